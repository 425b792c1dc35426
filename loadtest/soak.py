"""`catalogvlm soak`: a long steady Locust run against the CPU server while its memory is sampled.

Passes when no request failed and the server's resident memory (tritonserver and every stub) stays
flat after warm-up: the fitted slope is reported in MiB per minute.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import threading
import time
from dataclasses import dataclass

import numpy as np
import psutil

from catalogvlm.builders.repository import NO_RESULT_CACHE
from catalogvlm.servers import served

from .cli import aggregated_stats, headless_command


@dataclass(frozen=True)
class SoakResult:
    minutes: float
    requests: int
    failures: int
    rss_start_mib: float
    rss_end_mib: float
    slope_mib_per_min: float

    def passed(self, max_slope: float) -> bool:
        return self.failures == 0 and self.requests > 0 and self.slope_mib_per_min <= max_slope


def server_rss_mib(pids: tuple[int, ...]) -> float:
    """Resident memory of a server's processes and all their children (Triton's stubs, Dynamo's worker); a process
    that has ended counts nothing."""
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total / 2**20


def peak_rss_mib_until_exit(
    process: subprocess.Popen, pids: tuple[int, ...], timeout_s: float = math.inf, interval_s: float = 0.2
) -> float:
    """Waits until `process` exits (or `timeout_s` passes), sampling the resident memory of `pids` and their
    children; the peak, in MiB."""
    peak_mib = 0.0
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        peak_mib = max(peak_mib, server_rss_mib(pids))
        time.sleep(interval_s)
    return peak_mib


def slope_after_warmup(samples: list[tuple[float, float]], warmup_s: float) -> float:
    """Least-squares slope of (seconds, MiB) after warm-up, in MiB per minute."""
    kept = np.array([(t, m) for t, m in samples if t >= warmup_s])
    if len(kept) < 3:
        return float("nan")
    return float(np.polyfit(kept[:, 0] / 60.0, kept[:, 1], 1)[0])


def soak(minutes: float, users: int, warmup_minutes: float, csv_prefix: str) -> SoakResult:
    samples: list[tuple[float, float]] = []
    with served("cpu", values=NO_RESULT_CACHE) as server:
        command = headless_command(server.grpc_url, users, f"{int(minutes * 60)}s", "--csv", csv_prefix)
        started = time.monotonic()
        locust = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(10.0):
                samples.append((time.monotonic() - started, server_rss_mib(server.pids)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        locust.wait()
        stop.set()
        sampler.join()
    total = aggregated_stats(f"{csv_prefix}_stats.csv")
    return SoakResult(
        minutes, int(total["Request Count"]), int(total["Failure Count"]), samples[0][1] if samples else float("nan"),
        samples[-1][1] if samples else float("nan"), slope_after_warmup(samples, warmup_minutes * 60),
    )  # fmt: skip


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("soak", help="long steady load on the CPU server with memory sampling")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--max-slope", type=float, default=1.0, help="MiB per minute allowed after warm-up")
    parser.add_argument("--csv", default="soak", metavar="PREFIX")
    parser.set_defaults(handler=_soak)


def _soak(args: argparse.Namespace) -> int:
    result = soak(args.minutes, args.users, args.warmup_minutes, args.csv)
    print(json.dumps(result.__dict__))
    return 0 if result.passed(args.max_slope) else 1
