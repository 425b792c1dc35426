"""Pass/fail rules of a load test, checked on Locust's aggregated statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class AggregateStats(Protocol):
    """What Locust's `environment.stats.total` (a StatsEntry) offers."""

    num_requests: int
    fail_ratio: float
    total_rps: float

    def get_response_time_percentile(self, percent: float) -> float: ...


@dataclass(frozen=True)
class Thresholds:
    """0 disables a bound."""

    max_failure_ratio: float = 0.0
    max_p95_ms: float = 0.0
    max_p99_ms: float = 0.0
    min_rps: float = 0.0


def violations(stats: AggregateStats, thresholds: Thresholds) -> list[str]:
    if stats.num_requests == 0:
        return ["no request was made"]
    problems = []
    if stats.fail_ratio > thresholds.max_failure_ratio:
        problems.append(f"failure ratio {stats.fail_ratio:.4f} > {thresholds.max_failure_ratio}")
    for percent, bound in ((0.95, thresholds.max_p95_ms), (0.99, thresholds.max_p99_ms)):
        observed = stats.get_response_time_percentile(percent)
        if bound and observed > bound:
            problems.append(f"p{round(percent * 100)} {observed:.0f} ms > {bound:.0f} ms")
    if thresholds.min_rps and stats.total_rps < thresholds.min_rps:
        problems.append(f"throughput {stats.total_rps:.1f} req/s < {thresholds.min_rps} req/s")
    return problems
