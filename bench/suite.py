"""`catalogvlm bench`: every benchmark in one run, one Markdown report (CI runs `--quick`)."""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from catalogvlm.loadtest.corpus import load_corpus
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from . import bulk, concurrency, overload, preprocessing, serving
from . import taxonomy as taxonomy_bench


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("bench", help="run the benchmark suite and write a Markdown report")
    parser.add_argument("--quick", action="store_true", help="seconds instead of minutes (a smoke run)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here too")
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    report = run(quick=args.quick)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0


def run(quick: bool) -> str:
    seconds = 3.0 if quick else 20.0
    sections = [
        f"# catalogvlm benchmarks ({'quick smoke run' if quick else 'full run'})",
        f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}."
        " Load generator and server share the machine.",
    ]
    with serving.bench_server() as server:
        figures, breakdown = serving.overhead(server, concurrency=8, seconds=seconds)
        pipeline, echo = figures
        sections += [
            "## 1. Serving overhead (concurrency 8)",
            _table(figures),
            f"Zero-work pipeline / echo hop throughput: **{pipeline.per_s / echo.per_s:.2f}×** (target ≥ 0.5×).",
            "Where the time goes (Triton per-model statistics):\n\n" + "\n".join(f"- {line}" for line in breakdown),
        ]
        products = load_corpus(None, image_ratio=0.0).products
        concurrencies = (1, 4) if quick else (1, 4, 16)
        sections += [
            "## 2. CPU profile end to end (dev-set products, no images)",
            _table(serving.end_to_end(server, products, concurrencies, seconds)),
        ]
    sections += [
        "## 3. Triton vs. Dynamo, same CPU profile and load (dev-set products)",
        _table(serving.backends_side_by_side(products, (1, 8), seconds)),
    ]
    sections += ["## 4. Qwen2-VL preprocessing vs. Hugging Face", preprocessing.report(quick)]
    cases = taxonomy_bench.read_cases(taxonomy_bench.DEFAULT_CASES)
    figures_tx = taxonomy_bench.run(load_taxonomy(taxonomy_dir()), cases, repeats=2 if quick else 20)
    sections += ["## 5. Taxonomy correction", taxonomy_bench.report(figures_tx, len(cases))]
    sections += [
        "## 6. Pipeline concurrency: products in flight per process, against an in-flight-batching stand-in",
        concurrency.report(concurrency.run((16, 64) if quick else (16, 64, 256), seconds)),
    ]
    sections += [
        "## 7. Bulk pipeline (catalogvlm batch on Beam's DirectRunner) vs. the server's own rate",
        bulk.run(quick),
    ]
    sections += [
        f"## 8. Overload: a burst of {overload.BURST_FACTOR}× the users, through Locust",
        overload.run(quick),
    ]
    return "\n\n".join(sections)


def _table(figures: list[serving.LoadFigures]) -> str:
    rows = [
        "| what | concurrency | requests | errors | per second | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {f.name} | {f.concurrency} | {f.requests} | {f.errors} | {f.per_s:.1f} | {f.p50_ms:.1f} | {f.p99_ms:.1f} |"
        for f in figures
    ]
    return "\n".join(rows)
