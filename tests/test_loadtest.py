"""Load-test thresholds, the capacity planner, the soak analysis, and headless Locust against the server."""

from __future__ import annotations

import csv
import json
import math
import socket
import subprocess
import sys

import pytest

from catalogvlm.loadtest.capacity import Demand, GpuSupply, plan
from catalogvlm.loadtest.cli import aggregated_stats
from catalogvlm.loadtest.soak import slope_after_warmup

# Importing locust gevent-patches the whole process (which would break the asyncio gRPC client tests), so
# the thresholds are checked on Locust's real RequestStats in a child process.
THRESHOLD_CHECKS = """
import json
from locust.stats import RequestStats
from catalogvlm.loadtest.thresholds import Thresholds, violations

def stats_with(latencies_ms, failures=0):
    stats = RequestStats()
    for latency in latencies_ms:
        stats.log_request("grpc", "product_understanding", latency, 100)
    for _ in range(failures):
        stats.log_error("grpc", "product_understanding", "UNAVAILABLE")
    return stats.total

healthy = stats_with([100] * 99 + [900])
print(json.dumps([
    violations(healthy, Thresholds(max_failure_ratio=0.0, max_p95_ms=200)),
    violations(healthy, Thresholds(max_p99_ms=500)),
    violations(stats_with([100] * 10, failures=2), Thresholds(max_failure_ratio=0.1)),
    violations(RequestStats().total, Thresholds()),
]))
"""


def test_thresholds_on_locust_statistics():
    done = subprocess.run(
        [sys.executable, "-c", THRESHOLD_CHECKS], capture_output=True, text=True, timeout=60, check=True
    )
    passing, slow, failing, empty = json.loads(done.stdout.strip().splitlines()[-1])
    assert passing == []
    assert slow == ["p99 900 ms > 500 ms"]
    assert failing == ["failure ratio 0.2000 > 0.1"]
    assert empty == ["no request was made"]


def test_capacity_plan_arithmetic():
    result = plan(Demand(products_per_day=30_000_000, peak_factor=3), GpuSupply(products_per_s=40, latency_s=1.5))
    assert result.average_per_s == pytest.approx(347.22, abs=0.01)
    assert result.peak_per_s == pytest.approx(1041.67, abs=0.01)
    assert result.usable_per_gpu_per_s == pytest.approx(28.0)
    assert result.gpus == math.ceil(1041.666 / 28.0) == 38
    assert result.in_flight_at_peak == pytest.approx(1562.5)
    assert result.bls_instances_per_gpu == 1  # 59 products in flight per GPU fit one instance's 256 slots
    bigger = plan(Demand(30_000_000, 3), GpuSupply(products_per_s=400, latency_s=4, max_inflight=64, pipeline_cpu_ms=8))
    # 4 GPUs x 1,042 in flight each: ceil(1,041.7 / 0.7 / 64) = 24 instances for slots; CPU 11.9 cores / 4 = 3
    assert bigger.gpus == 4 and bigger.bls_instances_per_gpu == math.ceil(4166.7 / 4 / 0.7 / 64) == 24
    assert result.pipeline_cpu_cores == pytest.approx(1041.666 * 0.004 / 0.7, rel=1e-4)
    assert any("Little's law" in line for line in result.arithmetic)


def test_capacity_from_tokens_and_bad_input():
    supply = GpuSupply.from_tokens(tokens_per_product=2_000, tokens_per_s=40_000)
    assert supply.products_per_s == 20
    assert plan(Demand(86_400, peak_factor=1), supply).gpus == 1
    with pytest.raises(ValueError, match="positive"):
        plan(Demand(0), supply)


def test_capacity_command():
    done = subprocess.run(
        [sys.executable, "-m", "catalogvlm.cli", "capacity", "--products-per-day", "1000000",
         "--tokens-per-product", "1500", "--per-gpu-tokens-per-s", "30000"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "GPUs           = ceil(34.7 / 14.0) = 3" in done.stdout


def test_soak_slope_ignores_warmup():
    samples = [(t, 500.0 + (200.0 if t < 60 else 0.0) + 0.5 * t / 60) for t in range(0, 600, 10)]
    assert slope_after_warmup(samples, warmup_s=120) == pytest.approx(0.5, abs=1e-6)
    assert math.isnan(slope_after_warmup(samples[:2], warmup_s=0))


def run_loadtest(grpc_url, tmp_path, *thresholds):
    return subprocess.run(
        [sys.executable, "-m", "catalogvlm.cli", "loadtest", "--url", grpc_url, "--users", "4", "--spawn-rate", "4",
         "--run-time", "6s", "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html"), *thresholds],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.mark.server
def test_loadtest_passes_its_thresholds_and_writes_reports(grpc_url, tmp_path):
    done = run_loadtest(grpc_url, tmp_path, "--max-failure-ratio", "0", "--max-p95-ms", "30000", "--min-rps", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with (tmp_path / "run_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(rows["product_understanding"]["Request Count"]) > 0
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert (tmp_path / "run.html").stat().st_size > 10_000


@pytest.mark.server
def test_loadtest_fails_when_a_threshold_is_broken(grpc_url, tmp_path):
    done = run_loadtest(grpc_url, tmp_path, "--max-p95-ms", "0.001")
    assert done.returncode == 1
    assert "threshold failed: p95" in done.stderr


def test_loadtest_against_a_refusing_port_reports_and_exits(tmp_path):
    """Every call refused at once: thousands of failed gRPC calls, and still Locust writes its reports and leaves
    with the failed threshold's exit code (its last garbage collection once hung on a gRPC finalizer)."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{probe.getsockname()[1]}"
    done = run_loadtest(url, tmp_path, "--max-failure-ratio", "0")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "threshold failed: failure ratio" in done.stderr
    aggregated = aggregated_stats(tmp_path / "run_stats.csv")
    assert int(aggregated["Failure Count"]) == int(aggregated["Request Count"]) > 0
