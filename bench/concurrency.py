"""Pipeline concurrency: does one `product_understanding` process keep an in-flight-batching engine busy?

The `vlm` slot holds a stand-in whose every batch takes the same time whatever its size (bench/standins.py),
as TensorRT-LLM's in-flight batching roughly does. With C clients and two stages per product, a pipeline that
never holds a product back reaches C / (2 × latency) products/s: the ideal each figure is compared with.
`product_understanding` runs at its default settings (instances, max_inflight), on Triton and on Dynamo.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from catalogvlm.builders.repository import NO_RESULT_CACHE, NO_RETRIEVAL, ServedModel
from catalogvlm.client import Product, wire
from catalogvlm.loadtest.soak import server_rss_mib
from catalogvlm.servers import served

from .serving import BENCH_MODELS, SERVER_LOG

STANDIN_LATENCY_S = 0.3


@dataclass(frozen=True)
class ConcurrencyFigures:
    backend: str
    concurrency: int
    products: int
    errors: int
    per_s: float
    p50_ms: float
    p99_ms: float
    rss_mib: float

    @property
    def ideal_per_s(self) -> float:
        return self.concurrency / (2 * STANDIN_LATENCY_S)


def standin_vlm() -> ServedModel:
    """The stand-in in the `vlm` slot, in place of the profile's engine."""
    values = {
        "standin_latency_s": str(STANDIN_LATENCY_S),
        "standin_max_batch_size": "1024",
        "standin_max_queue_delay_microseconds": "2000",
        # One instance whose batches overlap: a request that arrives while batches run starts in the next batch
        # at once, as requests join an in-flight batch at its next iteration, instead of waiting for one to end.
        "standin_instances": "1",
        "standin_overlapping_batches": "256",
    }
    return ServedModel("vlm", BENCH_MODELS / "fixed_latency_vlm", values=values)


def run(concurrencies: Sequence[int], seconds: float) -> list[ConcurrencyFigures]:
    figures = []
    for backend in ("triton", "dynamo"):
        models = (standin_vlm(),)
        values = {**NO_RESULT_CACHE, **NO_RETRIEVAL}
        with served("cpu", backend=backend, values=values, extra_models=models, log_file=SERVER_LOG) as server:
            for concurrency in concurrencies:
                products, errors, latencies = asyncio.run(_closed_loop(server.grpc_url, concurrency, seconds))
                milliseconds = np.array(latencies or [float("nan")]) * 1e3
                figures.append(
                    ConcurrencyFigures(
                        backend, concurrency, products, errors, products / seconds,
                        float(np.percentile(milliseconds, 50)), float(np.percentile(milliseconds, 99)),
                        server_rss_mib(server.pids),
                    )
                )  # fmt: skip
    return figures


async def _closed_loop(url: str, concurrency: int, seconds: float, warmup_s: float = 2.0):
    """`concurrency` asyncio clients on one channel, each sending its next product when the last is answered."""
    latencies: list[float] = []
    errors = 0
    async with grpcaio.InferenceServerClient(url) as client:
        started = time.perf_counter()
        record_from, stop_at = started + warmup_s, started + warmup_s + seconds

        async def loop(index: int) -> None:
            nonlocal errors
            sent = index
            while (now := time.perf_counter()) < stop_at:
                inputs = wire.product_inputs(Product(title=f"Organic Cotton T-Shirt {sent}"), grpcaio.InferInput)
                try:
                    await client.infer(wire.PRODUCT_MODEL, inputs, client_timeout=60)
                    failed = False
                except InferenceServerException:
                    failed = True
                sent += concurrency
                if now >= record_from and time.perf_counter() <= stop_at:
                    latencies.append(time.perf_counter() - now)
                    errors += failed

        await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return len(latencies), errors, latencies


def report(figures: list[ConcurrencyFigures]) -> str:
    rows = [
        f"Stand-in `vlm`: any batch takes {STANDIN_LATENCY_S} s; ideal = concurrency / (2 × {STANDIN_LATENCY_S} s). "
        "Targets: ≥ 0.8× ideal at 64 and 256 on both backends, server RSS ≤ 2 GiB.",
        "",
        "| backend | concurrency | products | errors | products/s | ideal | × ideal | p50 ms | p99 ms | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {f.backend} | {f.concurrency} | {f.products} | {f.errors} | {f.per_s:.1f} | {f.ideal_per_s:.1f} | "
        f"**{f.per_s / f.ideal_per_s:.2f}×** | {f.p50_ms:.0f} | {f.p99_ms:.0f} | {f.rss_mib:,.0f} |"
        for f in figures
    ]
    return "\n".join(rows)
