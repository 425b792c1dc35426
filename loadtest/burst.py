"""A load burst for Locust, used beside the locustfile: `--base-users` users, then `--burst-factor` times as many,
then the base again, each phase `--phase-time` seconds; `--burst-report FILE` writes what each phase saw.

    locust -f loadtest/locustfile.py,loadtest/burst.py --host 127.0.0.1:8001 --headless \\
        --base-users 16 --burst-factor 4 --phase-time 30 --burst-report burst.json

A product request ends answered, refused (`UNAVAILABLE` "overloaded": past a model's max_inflight) or failed
otherwise; the report counts each per phase (by when it ended), with latencies of the answered and the refusals.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import numpy as np
from locust import LoadTestShape, events
from locust.env import Environment
from tritonclient.utils import InferenceServerException

from catalogvlm.client import wire

PHASES = ("before", "burst", "after")
PRODUCT_REQUESTS = "product_understanding"  # the locustfile's request names for classifications
_started_at = 0.0
_phase_s = 30.0
# phase -> outcome (answered, refused, failed) -> latencies in ms; and the first message of each other failure
_latencies: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
_failure_messages: dict[str, str] = {}


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("catalogvlm burst")
    group.add_argument("--base-users", type=int, default=16, help="users before and after the burst")
    group.add_argument("--burst-factor", type=float, default=4.0, help="users in the burst = base users × this")
    group.add_argument("--phase-time", type=float, default=30.0, help="seconds of each phase")
    group.add_argument("--burst-report", default="", help="JSON file with each phase's outcomes")


class BurstShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        phase = int(self.get_run_time() // options.phase_time)
        if phase >= len(PHASES):
            return None
        users = round(options.base_users * (options.burst_factor if PHASES[phase] == "burst" else 1))
        return users, float(users)  # every phase's users at once, as a burst arrives


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    global _started_at, _phase_s
    _started_at, _phase_s = time.monotonic(), environment.parsed_options.phase_time


@events.request.add_listener
def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if not name.startswith(PRODUCT_REQUESTS):  # products only: taxonomy_validate calls are cheap and never refused
        return
    index = int((time.monotonic() - _started_at) // _phase_s)
    phase = PHASES[min(index, len(PHASES) - 1)]  # the last answers of the run count as `after`
    outcome = "answered" if exception is None else "refused" if _is_refusal(exception) else "failed"
    if outcome == "failed":
        _failure_messages.setdefault(type(exception).__name__, str(exception)[:300])
    _latencies[phase][outcome].append(response_time)


def _is_refusal(exception: BaseException) -> bool:
    """The server's back-pressure (UNAVAILABLE "overloaded: ..."), not an unreachable server."""
    if not isinstance(exception, InferenceServerException):
        return False
    error = wire.as_catalog_error(exception)
    return error.status == "UNAVAILABLE" and error.message.startswith("overloaded")


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    path = environment.parsed_options.burst_report if environment.parsed_options else ""
    if not path:
        return
    seconds = environment.parsed_options.phase_time
    report = {phase: _phase_summary(_latencies[phase], seconds) for phase in PHASES}
    report["failure_messages"] = _failure_messages
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)


def _phase_summary(latencies: dict[str, list[float]], seconds: float) -> dict[str, float]:
    summary: dict[str, float] = {}
    for outcome in ("answered", "refused", "failed"):
        values = np.array(latencies[outcome] or [np.nan])
        summary[outcome] = len(latencies[outcome])
        summary[f"{outcome}_per_s"] = len(latencies[outcome]) / seconds
        summary[f"{outcome}_p50_ms"] = float(np.percentile(values, 50))
        summary[f"{outcome}_p99_ms"] = float(np.percentile(values, 99))
        summary[f"{outcome}_max_ms"] = float(np.max(values))
    return summary
