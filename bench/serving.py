"""Serving benchmarks through a real tritonserver, contenders measured side by side in one run.

1. Overhead: the whole two-stage pipeline with a `vlm` that does no work vs. one Python-backend echo hop,
   same concurrency; plus Triton's per-model statistics to show where the pipeline's time goes.
2. CPU profile end to end: products/s and latency percentiles at several concurrencies.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from catalogvlm.builders.repository import MODEL_SOURCES, NO_RESULT_CACHE, NO_RETRIEVAL, ServedModel
from catalogvlm.client import Product, wire
from catalogvlm.servers import served
from catalogvlm.servers.triton import TritonServer

BENCH_MODELS = Path(__file__).with_name("models")
SERVER_LOG = Path(tempfile.gettempdir()) / "catalogvlm-bench-server.log"  # servers' own logs, not the report
ZERO_WORK_PIPELINE = "product_understanding_zero_work"
ECHO = "echo"
NULL_VLM = "null_vlm"
# The fixed-latency stand-in with no latency: a `vlm` that does no work, so the pipeline's own cost shows.
NO_LATENCY = {
    "standin_latency_s": "0",
    "standin_max_batch_size": "8",
    "standin_max_queue_delay_microseconds": "0",
    "standin_instances": "2",
    "standin_overlapping_batches": "1",
}


@dataclass(frozen=True)
class LoadFigures:
    name: str
    concurrency: int
    requests: int
    errors: int
    per_s: float
    p50_ms: float
    p99_ms: float


@contextmanager
def bench_server() -> Iterator[TritonServer]:
    """The CPU profile plus the benchmark-only models (zero-work pipeline, null vlm, echo)."""
    extra = (
        ServedModel(NULL_VLM, BENCH_MODELS / "fixed_latency_vlm", values=NO_LATENCY),
        ServedModel(ECHO, BENCH_MODELS / "echo"),
        ServedModel(
            ZERO_WORK_PIPELINE,
            MODEL_SOURCES / "product_understanding",
            values={"vlm_model_name": NULL_VLM, **NO_RETRIEVAL},
        ),
    )
    with served("cpu", values=NO_RESULT_CACHE, extra_models=extra, log_file=SERVER_LOG) as server:
        yield server


def drive(
    url: str,
    name: str,
    model: str,
    make_inputs: Callable[[int], list[Any]],
    concurrency: int,
    seconds: float,
    warmup_s: float = 1.0,
) -> LoadFigures:
    """`concurrency` closed-loop clients, each with its own connection, for `seconds` after a warm-up."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start = time.perf_counter()
    record_from, stop_at = start + warmup_s, start + warmup_s + seconds

    def client_loop(index: int) -> None:
        with grpcclient.InferenceServerClient(url) as client:
            sent = index
            while (now := time.perf_counter()) < stop_at:
                try:
                    client.infer(model, make_inputs(sent), client_timeout=120)
                    failed = False
                except InferenceServerException:
                    failed = True
                sent += concurrency
                if now >= record_from:
                    latencies[index].append(time.perf_counter() - now)
                    errors[index] += failed

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured = np.array([t for per_client in latencies for t in per_client]) * 1e3
    if measured.size == 0:
        return LoadFigures(name, concurrency, 0, sum(errors), 0.0, float("nan"), float("nan"))
    return LoadFigures(
        name, concurrency, measured.size, sum(errors), measured.size / seconds,
        float(np.percentile(measured, 50)), float(np.percentile(measured, 99)),
    )  # fmt: skip


def product_inputs(products: Sequence[Product]) -> Callable[[int], list[Any]]:
    return lambda i: wire.product_inputs(products[i % len(products)], grpcclient.InferInput)


def echo_inputs(i: int) -> list[Any]:
    return wire.product_inputs(Product(title=f"Cotton T-Shirt {i}"), grpcclient.InferInput)[:1]


def overhead(server: TritonServer, concurrency: int, seconds: float) -> tuple[list[LoadFigures], list[str]]:
    products = [Product(title=f"Organic Cotton T-Shirt {i}", description="Soft cotton tee.") for i in range(64)]
    with cpu_per_process(server) as pipeline_cpu:
        pipeline = drive(server.grpc_url, "zero-work two-stage pipeline", ZERO_WORK_PIPELINE,
                         product_inputs(products), concurrency, seconds)  # fmt: skip
    with cpu_per_process(server) as echo_cpu:
        echo = drive(server.grpc_url, "single Python-backend echo hop", ECHO, echo_inputs, concurrency, seconds)
    notes = where_time_goes(server.grpc_url, (ZERO_WORK_PIPELINE, NULL_VLM, ECHO))
    for figures, cpu in ((pipeline, pipeline_cpu), (echo, echo_cpu)):
        total_requests = max(figures.requests, 1)
        per_request = ", ".join(f"{group} {seconds_ * 1e3 / total_requests:.2f}" for group, seconds_ in cpu.items())
        notes.append(f"CPU ms per request, {figures.name}: {per_request}")
    return [pipeline, echo], notes


@contextmanager
def cpu_per_process(server: TritonServer) -> Iterator[dict[str, float]]:
    """CPU seconds used during the block by the Triton core, each model's stub processes and this process
    (the load generator); filled in when the block ends."""
    import psutil

    def snapshot() -> dict[str, float]:
        root = psutil.Process(server.pids[0])
        totals: dict[str, float] = {}
        for process in [root, *root.children(recursive=True), psutil.Process()]:
            try:
                times = process.cpu_times()
                label = _process_label(process, root.pid)
            except psutil.NoSuchProcess:
                continue
            totals[label] = totals.get(label, 0.0) + times.user + times.system
        return totals

    used: dict[str, float] = {}
    before = snapshot()
    yield used
    after = snapshot()
    used.update({k: after[k] - before.get(k, 0.0) for k in sorted(after) if after[k] - before.get(k, 0.0) > 0.01})


def _process_label(process, server_pid: int) -> str:
    import os

    if process.pid == server_pid:
        return "tritonserver core"
    if process.pid == os.getpid():
        return "load generator"
    command = " ".join(process.cmdline())
    model = next((part.split("/")[-3] for part in command.split() if part.endswith("/model.py")), None)
    return f"{model} stubs" if model else "other"


def where_time_goes(url: str, models: Sequence[str]) -> list[str]:
    """Triton's own statistics: mean queue and compute time per successful request, per model."""
    lines = []
    with grpcclient.InferenceServerClient(url) as client:
        for model in models:
            stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]["inference_stats"]
            count = int(stats["success"].get("count", 0)) or 1
            queue = int(stats["queue"].get("ns", 0)) / count / 1e6
            compute = sum(int(stats[k].get("ns", 0)) for k in ("compute_input", "compute_infer", "compute_output"))
            lines.append(
                f"{model}: {count} requests, queue {queue:.2f} ms, compute {compute / count / 1e6:.2f} ms each"
            )
    return lines


def backends_side_by_side(
    products: Sequence[Product], concurrencies: Sequence[int], seconds: float
) -> list[LoadFigures]:
    """The CPU profile behind tritonserver, then behind Dynamo's frontend + our worker, same load."""
    figures = []
    for backend in ("triton", "dynamo"):
        with served("cpu", backend=backend, values=NO_RESULT_CACHE, log_file=SERVER_LOG) as server:
            for concurrency in concurrencies:
                figures.append(
                    drive(server.grpc_url, f"{backend}: product_understanding", wire.PRODUCT_MODEL,
                          product_inputs(products), concurrency, seconds)
                )  # fmt: skip
    return figures


def end_to_end(server: TritonServer, products: Sequence[Product], concurrencies: Sequence[int], seconds: float):
    return [
        drive(server.grpc_url, "CPU profile product_understanding", wire.PRODUCT_MODEL, product_inputs(products), c,
              seconds)
        for c in concurrencies
    ]  # fmt: skip
