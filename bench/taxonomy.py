"""Category correction: accuracy and latency beside plain rapidfuzz `extractOne` over all paths, one run.

    python -m catalogvlm.bench.taxonomy [--taxonomy DIR] [--cases FILE.jsonl] [--repeats N]

Cases are JSON lines `{"input": ..., "expected_id": ...}` (default: the project's hand-built set of
realistic model mistakes in bench/data/hallucinated_paths.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import CategoryCorrector, Taxonomy, load_taxonomy

from .corpora import CORRECTION_CASES

DEFAULT_CASES = CORRECTION_CASES


@dataclass(frozen=True)
class CorrectionFigures:
    name: str
    accuracy: float
    p50_ms: float
    p99_ms: float


def read_cases(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(name: str, answer: Callable[[str], str], cases: list[dict[str, str]], repeats: int) -> CorrectionFigures:
    for case in cases:  # warm caches the same way for both contenders
        answer(case["input"])
    correct = sum(answer(c["input"]) == c["expected_id"] for c in cases)
    latencies = []
    for _ in range(repeats):
        for case in cases:
            start = time.perf_counter()
            answer(case["input"])
            latencies.append(time.perf_counter() - start)
    ms = np.array(latencies) * 1e3
    return CorrectionFigures(name, correct / len(cases), float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))


def baseline(taxonomy: Taxonomy) -> Callable[[str], str]:
    paths = [c.full_name for c in taxonomy]
    ids = [c.id for c in taxonomy]
    return lambda query: ids[process.extractOne(query, paths, scorer=fuzz.WRatio)[2]]


def run(taxonomy: Taxonomy, cases: list[dict[str, str]], repeats: int) -> list[CorrectionFigures]:
    corrector = CategoryCorrector(taxonomy)
    ours = measure("catalogvlm CategoryCorrector", lambda q: corrector.correct(q).id, cases, repeats)
    plain = measure("rapidfuzz extractOne(WRatio) over paths", baseline(taxonomy), cases, 1)
    return [ours, plain]


def report(figures: list[CorrectionFigures], n_cases: int) -> str:
    ours, plain = figures
    lines = [
        f"Category correction, {n_cases} cases, {os.cpu_count()} CPU cores",
        "",
        "| method | accuracy | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {f.name} | {f.accuracy:.3f} | {f.p50_ms:.3f} | {f.p99_ms:.3f} |" for f in figures),
        "",
        f"accuracy: {ours.accuracy:.3f} vs {plain.accuracy:.3f} (+{ours.accuracy - plain.accuracy:.3f}); "
        f"p99 latency {plain.p99_ms / ours.p99_ms:.1f}x lower, p50 {plain.p50_ms / ours.p50_ms:.1f}x lower",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--taxonomy", metavar="DIR")
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--repeats", type=int, default=20, help="timed passes over the cases for our corrector")
    args = parser.parse_args(argv)
    cases = read_cases(args.cases)
    print(report(run(load_taxonomy(taxonomy_dir(args.taxonomy)), cases, args.repeats), len(cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
