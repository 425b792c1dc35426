"""Section 7: `catalogvlm batch` against the server's own saturated rate (Locust), and a re-run with 10% changed.

The catalog is the dev set repeated under new ids until it holds enough products; the server's result cache
is off, so a repeated product costs a model call as a new one would. The pipeline runs as a user runs it (a
subprocess, the DirectRunner with a worker process per core) and its peak RSS is that of its process tree.
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from catalogvlm.builders.repository import NO_RESULT_CACHE
from catalogvlm.loadtest.cli import aggregated_stats, headless_command
from catalogvlm.loadtest.corpus import DEFAULT_CORPUS
from catalogvlm.loadtest.soak import peak_rss_mib_until_exit
from catalogvlm.servers import served

FIELDS = ("handle", "title", "description", "vendor", "product_type", "tags")
LOCUST_EXIT_GRACE_S = 60
LOCUST_USERS = 128  # as many in flight as the pipeline's two workers with batches of 64


@dataclass(frozen=True)
class BulkRun:
    name: str
    rows: int
    predicted: int
    carried_over: int
    dead_letter: int
    seconds: float
    peak_rss_mib: float

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds


def run(quick: bool) -> str:
    size, locust_s = (300, 15) if quick else (10_000, 60)
    with tempfile.TemporaryDirectory(prefix="catalogvlm-bulk-bench-") as scratch:
        folder = Path(scratch)
        catalog = write_catalog(folder / "catalog.jsonl", size)
        with served("cpu", values=NO_RESULT_CACHE) as server:
            saturated = locust_rate(server.grpc_url, folder / "locust", locust_s)
            first = batch(server.grpc_url, "all products", catalog, folder / "run1")
            changed = change_tenth(catalog)
            second = batch(server.grpc_url, f"{changed} changed (10%)", catalog, folder / "run2", folder / "run1")
    return report(saturated, (first, second))


def write_catalog(path: Path, size: int) -> Path:
    with DEFAULT_CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = [{name: row[name] for name in FIELDS} for row in csv.DictReader(handle)]
    with path.open("w", encoding="utf-8") as out:
        for index in range(size):
            row = rows[index % len(rows)]
            out.write(json.dumps({**row, "id": f"{row['handle']}-{index // len(rows)}"}) + "\n")
    return path


def change_tenth(catalog: Path) -> int:
    """Every tenth product gets a new title; the rest stay as they were."""
    rows = [json.loads(line) for line in catalog.read_text(encoding="utf-8").splitlines()]
    for row in rows[::10]:
        row["title"] += " (new season)"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows[::10])


def locust_rate(url: str, csv_prefix: Path, seconds: int) -> float:
    """Requests per second Locust sustains against the server (the same dev-set products, no images)."""
    command = headless_command(url, LOCUST_USERS, f"{seconds}s", "--image-ratio", "0", "--csv", str(csv_prefix))
    # Seen once in a full test run: Locust ran its time but did not exit. It rewrites its CSV stats every second
    # during the run, so the run's figures are already on disk: past a grace period it is killed and they are read.
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(command, check=True, capture_output=True, timeout=seconds + LOCUST_EXIT_GRACE_S)
    return float(aggregated_stats(f"{csv_prefix}_stats.csv")["Requests/s"])


def batch(url: str, name: str, catalog: Path, output: Path, previous: Path | None = None) -> BulkRun:
    command = [sys.executable, "-m", "catalogvlm.cli", "batch", "--url", url, "--input", str(catalog),
               "--output", str(output)]  # fmt: skip
    command += ["--previous", str(previous)] if previous else []
    started = time.perf_counter()
    # Its only output is one summary line, so the pipe cannot fill while its memory is sampled here.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_mib = peak_rss_mib_until_exit(process, (process.pid,))
    out = process.stdout.read()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"catalogvlm batch exited with {process.returncode}")
    summary = json.loads(out.strip().splitlines()[-1])
    return BulkRun(
        name, summary["rows"], summary["predicted"], summary["carried_over"], summary["dead_letter"], elapsed,
        peak_mib,
    )  # fmt: skip


def report(saturated: float, runs: tuple[BulkRun, ...]) -> str:
    rows = [
        f"Server's saturated rate (Locust, {LOCUST_USERS} users, same products): **{saturated:.1f} products/s**.",
        "",
        "| run | products | predicted | carried over | dead letter | seconds | products/s | vs. Locust "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {r.name} | {r.rows} | {r.predicted} | {r.carried_over} | {r.dead_letter} | {r.seconds:.1f} | "
        f"{r.per_s:.1f} | **{r.per_s / saturated:.2f}×** | {r.peak_rss_mib:.0f} |"
        for r in runs
    ]
    first, second = runs
    rows += [
        "",
        f"Re-run with 10% changed: {second.seconds / first.seconds:.2f}× the first run's time "
        f"({second.predicted} predicted, {second.carried_over} carried over). Times include the pipeline's own start"
        " (worker processes, reading the previous run).",
    ]
    return "\n".join(rows)
