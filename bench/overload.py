"""Overload: a burst of four times the users the server is sized for, through Locust (loadtest/burst.py).

The server is sized for the base load: each of the two `product_understanding` instances admits as many
products as there are base users (`max_inflight`), so together they admit half the burst and refuse
the rest with `UNAVAILABLE`. Locust's users do not back off: a refused user asks again at once, so the burst is
as hard as it can be. What must hold: every request answered or refused (no other failure, no call waiting out its
deadline), refusals fast, memory bounded, and throughput after the burst as before it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from catalogvlm.builders.repository import NO_RESULT_CACHE
from catalogvlm.loadtest.cli import burst_command
from catalogvlm.loadtest.soak import peak_rss_mib_until_exit, server_rss_mib
from catalogvlm.servers import served

from .serving import SERVER_LOG

BURST_FACTOR = 4
LOCUST_EXIT_GRACE_S = 60


def run(quick: bool) -> str:
    base_users, phase_s = (4, 8.0) if quick else (16, 30.0)
    values = {**NO_RESULT_CACHE, "max_inflight": str(base_users)}
    with served("cpu", values=values, log_file=SERVER_LOG) as server, tempfile.TemporaryDirectory() as work:
        report_path = Path(work) / "burst.json"
        command = burst_command(server.grpc_url, base_users, BURST_FACTOR, phase_s, report_path, "--image-ratio", "0")
        idle_mib = server_rss_mib(server.pids)
        peak_mib = _run_sampling_memory(command, server.pids, timeout_s=3 * phase_s + LOCUST_EXIT_GRACE_S)
        phases = json.loads(report_path.read_text(encoding="utf-8"))
    return report(phases, base_users, phase_s, idle_mib, peak_mib)


def _run_sampling_memory(command: list[str], server_pids: tuple[int, ...], timeout_s: float) -> float:
    """Run Locust to its end, sampling the server's resident memory; the peak in MiB."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_mib = peak_rss_mib_until_exit(process, server_pids, timeout_s, interval_s=0.5)
    if process.poll() is None:  # hung past its phases (see the locustfile on exit): the bench says so
        process.kill()
        raise RuntimeError(f"Locust did not exit within {timeout_s:.0f} s")
    return peak_mib


def report(phases: dict, base_users: int, phase_s: float, idle_mib: float, peak_mib: float) -> str:
    users = {"before": base_users, "burst": base_users * BURST_FACTOR, "after": base_users}
    rows = [
        f"`max_inflight` {base_users} per `product_understanding` instance; {phase_s:.0f} s per phase; users never"
        " back off. Every request must end answered or refused (`UNAVAILABLE`); nothing else.",
        "",
        "| phase | users | products answered/s | answered p50 / p99 / max ms | refused/s | refusal p99 ms |"
        " other failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase, figures in ((name, phases[name]) for name in users):
        rows.append(
            f"| {phase} | {users[phase]} | {figures['answered_per_s']:.1f} | {figures['answered_p50_ms']:.0f} / "
            f"{figures['answered_p99_ms']:.0f} / {figures['answered_max_ms']:.0f} | {figures['refused_per_s']:.1f} | "
            f"{figures['refused_p99_ms']:.0f} | {figures['failed']:.0f} |"
        )
    before, after = phases["before"]["answered_per_s"], phases["after"]["answered_per_s"]
    recovered = after / before if before else float("nan")
    rows += [
        "",
        f"Throughput after the burst / before it: **{recovered:.2f}×**; server RSS {idle_mib:,.0f} MiB idle, "
        f"{peak_mib:,.0f} MiB at its peak.",
    ]
    if phases.get("failure_messages"):
        rows.append("Other failures: " + "; ".join(f"{k}: {v}" for k, v in phases["failure_messages"].items()))
    return "\n".join(rows)
