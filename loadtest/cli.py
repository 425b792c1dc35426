"""`catalogvlm loadtest`: headless Locust with this project's locustfile, thresholds and reports."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
BURST_SHAPE = Path(__file__).with_name("burst.py")  # a Locust load shape: base users, a burst, the base again


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("loadtest", help="headless Locust load test over gRPC, with pass/fail thresholds")
    parser.add_argument("--url", required=True, help="gRPC address of Triton or Dynamo, HOST:PORT")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--spawn-rate", type=float, default=2.0)
    parser.add_argument("--run-time", default="1m", help="e.g. 30s, 10m")
    parser.add_argument("--csv", metavar="PREFIX", help="Locust CSV reports (PREFIX_stats.csv, ...)")
    parser.add_argument("--html", metavar="FILE", help="Locust HTML report")
    parser.add_argument("--corpus", help="products .csv/.jsonl (default: the dev set)")
    parser.add_argument("--image-ratio", type=float, default=0.3)
    parser.add_argument("--max-failure-ratio", type=float, default=0.0)
    parser.add_argument("--max-p95-ms", type=float, default=0.0)
    parser.add_argument("--max-p99-ms", type=float, default=0.0)
    parser.add_argument("--min-rps", type=float, default=0.0)
    parser.add_argument("--processes", type=int, help="Locust worker processes on this machine (-1 = one per core)")
    parser.set_defaults(handler=_loadtest)


def headless_command(host: str, users: int, run_time: str, *options: str, spawn_rate: float | None = None) -> list[str]:
    """Our locustfile, headless, summary only; `users` all started at once unless `spawn_rate` says otherwise."""
    return _headless([LOCUSTFILE], host, "-u", str(users), "-r", str(spawn_rate or users), "-t", run_time, *options)


def burst_command(host: str, base_users: int, factor: float, phase_s: float, report: Path, *options: str) -> list[str]:
    """Our locustfile under the burst shape (loadtest/burst.py), headless; each phase's outcomes go to `report`."""
    shape = ["--base-users", str(base_users), "--burst-factor", str(factor), "--phase-time", str(phase_s),
             "--burst-report", str(report)]  # fmt: skip
    return _headless([LOCUSTFILE, BURST_SHAPE], host, *shape, *options)


def _headless(locustfiles: list[Path], host: str, *options: str) -> list[str]:
    files = ",".join(str(path) for path in locustfiles)
    return [sys.executable, "-m", "locust", "-f", files, "--headless", "--host", host, "--only-summary", *options]


def aggregated_stats(stats_csv: str | Path) -> dict[str, str]:
    """The `Aggregated` row of Locust's PREFIX_stats.csv (Request Count, Failure Count, Requests/s, ...)."""
    with open(stats_csv, encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")


def locust_command(args: argparse.Namespace) -> list[str]:
    thresholds = ["--image-ratio", str(args.image_ratio), "--max-failure-ratio", str(args.max_failure_ratio),
                  "--max-p95-ms", str(args.max_p95_ms), "--max-p99-ms", str(args.max_p99_ms),
                  "--min-rps", str(args.min_rps)]  # fmt: skip
    command = headless_command(args.url, args.users, args.run_time, *thresholds, spawn_rate=args.spawn_rate)
    for flag, value in (("--csv", args.csv), ("--html", args.html), ("--corpus", args.corpus)):
        if value:
            command += [flag, str(value)]
    if args.processes:
        command += ["--processes", str(args.processes)]
    return command


def _loadtest(args: argparse.Namespace) -> int:
    return subprocess.run(locust_command(args), check=False).returncode
