"""Locust load test of catalogvlm over KServe v2 gRPC (Triton or Dynamo).

    locust -f loadtest/locustfile.py --host 127.0.0.1:8001 --headless -u 16 -r 4 -t 2m --csv out/run
    locust -f loadtest/locustfile.py --host 127.0.0.1:8001            # web UI on :8089

Order matters (checked here): `locust` first (it monkey-patches), then gRPC's gevent integration, then any
gRPC object; and every client is closed in on_stop, or Locust never exits. Even so, a gRPC finalizer run by
the interpreter's last garbage collection can wait forever on a lock a dead greenlet held (seen about once in three
runs against a refusing port, and once in CI); so once Locust has written every report, the process leaves with its
exit code without that collection (`_exit_skipping_finalizers`).
"""

from __future__ import annotations

import grpc.experimental.gevent as grpc_gevent
import locust
from locust import User, events, task
from locust.env import Environment

grpc_gevent.init_gevent()

import atexit  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import tritonclient.grpc as grpcclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from catalogvlm.client import wire  # noqa: E402
from catalogvlm.loadtest.corpus import Corpus, load_corpus  # noqa: E402
from catalogvlm.loadtest.thresholds import Thresholds, violations  # noqa: E402
from catalogvlm.pipeline.contract import API_KEY_HEADER  # noqa: E402

log = logging.getLogger("catalogvlm.loadtest")
_corpus: Corpus | None = None
_exit_code: int | None = None  # Locust's, once it has written every report


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("catalogvlm")
    group.add_argument("--corpus", default="", help="products .csv/.jsonl (default: the dev set)")
    group.add_argument("--image-ratio", type=float, default=0.3, help="share of products sent with an image")
    group.add_argument("--validate-weight", type=int, default=1, help="taxonomy_validate tasks per 10 classify")
    group.add_argument("--max-failure-ratio", type=float, default=0.0)
    group.add_argument("--max-p95-ms", type=float, default=0.0, help="0 = no threshold")
    group.add_argument("--max-p99-ms", type=float, default=0.0, help="0 = no threshold")
    group.add_argument("--min-rps", type=float, default=0.0, help="0 = no threshold")
    group.add_argument("--api-key", default="", help="sent as the api-key header (serve --api-key)")


@events.init.add_listener
def _load_corpus(environment: Environment, **_: Any) -> None:
    global _corpus
    options = environment.parsed_options
    if options is not None:
        _corpus = load_corpus(options.corpus or None, options.image_ratio)
        # Locust turns weights into a list when the class is made; a later change must be a list too.
        GrpcProductUser.tasks = [GrpcProductUser.classify] * 10 + [GrpcProductUser.validate] * options.validate_weight


@events.quitting.add_listener
def _enforce_thresholds(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    thresholds = Thresholds(options.max_failure_ratio, options.max_p95_ms, options.max_p99_ms, options.min_rps)
    broken = violations(environment.stats.total, thresholds)
    for problem in broken:
        log.error("threshold failed: %s", problem)
    if broken:
        environment.process_exit_code = 1


@events.quit.add_listener
def _remember_exit_code(exit_code: int, **_: Any) -> None:
    """Fired once Locust has written its reports, just before it exits."""
    global _exit_code
    _exit_code = exit_code


@atexit.register
def _exit_skipping_finalizers() -> None:
    """Registered on import, before Locust registers its own, so it runs after them (last in, first out); it leaves
    only after Locust's `quit` (a process that never got that far exits as usual)."""
    if _exit_code is None:
        return
    logging.shutdown()  # logging's own exit function, registered before this one, is skipped
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_code)


class TritonGrpcUser(User):
    """One sync tritonclient per user; every call timed here and reported through `events.request`."""

    abstract = True

    def on_start(self) -> None:
        self.client = grpcclient.InferenceServerClient(self.host)
        api_key = self.environment.parsed_options.api_key if self.environment.parsed_options else ""
        self.headers = {API_KEY_HEADER: api_key} if api_key else None

    def on_stop(self) -> None:
        self.client.close()

    def infer(self, name: str, model: str, inputs: list[Any]) -> Any:
        started = time.perf_counter()
        response, error, length = None, None, 0
        try:
            response = self.client.infer(model, inputs, headers=self.headers, client_timeout=60)
            length = response.get_response().ByteSize()
        except InferenceServerException as raised:
            error = raised
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1e3,
            response_length=length,
            exception=error,
            context={},
        )
        return response


class GrpcProductUser(TritonGrpcUser):
    """Classifies products from the corpus (some with images) and validates merchant category paths."""

    @task(10)
    def classify(self) -> None:
        product = _corpus.product()
        name = "product_understanding" + (" [image]" if product.image else "")
        self.infer(name, wire.PRODUCT_MODEL, wire.product_inputs(product, grpcclient.InferInput))

    @task(1)
    def validate(self) -> None:
        paths = _corpus.category_paths(count=4)
        self.infer("taxonomy_validate", wire.VALIDATE_MODEL, wire.category_inputs(paths, grpcclient.InferInput))


__all__ = ["GrpcProductUser", "TritonGrpcUser", "locust"]
