"""How many GPUs and Triton instances a daily volume needs, with the arithmetic shown.

Inputs are measured, not assumed: per-GPU throughput from this project's Locust run or
`perf_analyzer -i grpc` against one GPU server (or tokens/s from TensorRT-LLM's own benchmark with the
token budget per product), end-to-end latency at that load, and the pipeline's CPU cost per product
(`catalogvlm bench`, section 1).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Demand:
    products_per_day: float
    peak_factor: float = 3.0  # peak rate / daily average


@dataclass(frozen=True)
class GpuSupply:
    products_per_s: float  # one GPU server at its knee (latency still acceptable)
    latency_s: float = 2.0  # end-to-end latency per product at that load
    pipeline_cpu_ms: float = 4.0  # BLS + Triton core CPU per product (bench section 1)
    headroom: float = 0.3  # share of capacity kept free for bursts and a failed node
    max_inflight: int = 256  # products one product_understanding instance carries at once (config parameter)
    # The cost cascade: the share of products whose stage 1 retrieval answers (catalogvlm eval's cascade table at
    # the deployment's cascade_threshold), and the share of a product's GPU time its stage-1 call takes (the
    # stage latency histograms, catalogvlm_stage_latency_seconds, at the load products_per_s was measured at).
    cascade_share: float = 0.0
    stage1_share: float = 0.5

    @classmethod
    def from_tokens(cls, tokens_per_product: float, tokens_per_s: float, **rest: float) -> GpuSupply:
        return cls(products_per_s=tokens_per_s / tokens_per_product, **rest)


@dataclass(frozen=True)
class CapacityPlan:
    average_per_s: float
    peak_per_s: float
    usable_per_gpu_per_s: float
    gpus: int
    in_flight_at_peak: float
    bls_instances_per_gpu: int
    pipeline_cpu_cores: float
    gpus_without_cascade: int
    arithmetic: list[str] = field(default_factory=list)


def plan(demand: Demand, supply: GpuSupply) -> CapacityPlan:
    if demand.products_per_day <= 0 or supply.products_per_s <= 0 or not 0 <= supply.headroom < 1:
        raise ValueError("volumes and throughputs must be positive, headroom in [0, 1)")
    if not 0 <= supply.cascade_share <= 1 or not 0 <= supply.stage1_share < 1:
        raise ValueError("the cascade share must be in [0, 1], the stage-1 share in [0, 1)")
    average = demand.products_per_day / SECONDS_PER_DAY
    peak = average * demand.peak_factor
    gpu_work = 1 - supply.cascade_share * supply.stage1_share  # of a product's GPU time, with the cascade
    usable = supply.products_per_s / gpu_work * (1 - supply.headroom)
    gpus = max(1, math.ceil(peak / usable))
    gpus_without_cascade = max(1, math.ceil(peak / (supply.products_per_s * (1 - supply.headroom))))
    in_flight = peak * supply.latency_s  # Little's law
    per_gpu_in_flight = in_flight / gpus
    cpu_cores = peak * supply.pipeline_cpu_ms / 1000 / (1 - supply.headroom)
    # An instance carries up to max_inflight products on its event loop and is one Python process: instances
    # are needed for in-flight slots (with the same headroom) and for CPU (at most one core each).
    for_slots = math.ceil(per_gpu_in_flight / (1 - supply.headroom) / supply.max_inflight)
    for_cpu = math.ceil(cpu_cores / gpus)
    bls_per_gpu = max(1, for_slots, for_cpu)
    lines = [
        f"average rate   = {demand.products_per_day:,.0f} / {SECONDS_PER_DAY:,} s = {average:,.1f} products/s",
        f"peak rate      = {average:,.1f} × {demand.peak_factor:g} = {peak:,.1f} products/s",
        f"GPU work       = 1 − cascade share {supply.cascade_share:g} × stage-1 share {supply.stage1_share:g}"
        f" = {gpu_work:.3f} of a product's two VLM calls",
        f"usable per GPU = {supply.products_per_s:,.1f} / {gpu_work:.3f} × (1 − {supply.headroom:g})"
        f" = {usable:,.1f} products/s",
        f"GPUs           = ceil({peak:,.1f} / {usable:,.1f}) = {gpus}"
        f" ({gpus_without_cascade} without the cascade: {gpus_without_cascade - gpus} saved)",
        f"in flight      = {peak:,.1f}/s × {supply.latency_s:g} s = {in_flight:,.1f} requests (Little's law)",
        f"pipeline CPU   = {peak:,.1f}/s × {supply.pipeline_cpu_ms:g} ms / (1 − {supply.headroom:g})"
        f" = {cpu_cores:,.1f} cores",
        f"BLS instances  = max(ceil({per_gpu_in_flight:,.1f} per GPU / (1 − {supply.headroom:g}) / max_inflight"
        f" {supply.max_inflight}) = {for_slots}, ceil({cpu_cores:,.1f} cores / {gpus} GPUs) = {for_cpu})"
        f" = {bls_per_gpu} per GPU (product_understanding instance_group count)",
    ]
    return CapacityPlan(average, peak, usable, gpus, in_flight, bls_per_gpu, cpu_cores, gpus_without_cascade, lines)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("capacity", help="GPUs and Triton instances for a daily volume")
    parser.add_argument("--products-per-day", type=float, required=True)
    parser.add_argument("--peak-factor", type=float, default=3.0)
    supply = parser.add_mutually_exclusive_group(required=True)
    supply.add_argument("--per-gpu-products-per-s", type=float, help="measured on one GPU server")
    supply.add_argument("--tokens-per-product", type=float, help="with --per-gpu-tokens-per-s")
    parser.add_argument("--per-gpu-tokens-per-s", type=float)
    parser.add_argument("--latency-s", type=float, default=2.0, help="end-to-end latency at that load")
    parser.add_argument("--pipeline-cpu-ms", type=float, default=4.0, help="catalogvlm bench, section 1")
    parser.add_argument("--headroom", type=float, default=0.3)
    parser.add_argument("--max-inflight", type=int, default=256, help="product_understanding's max_inflight")
    parser.add_argument(
        "--cascade-share",
        type=float,
        default=0.0,
        help="share of products whose stage 1 retrieval answers (catalogvlm eval's cascade table at your "
        "cascade_threshold; 0: cascade off)",
    )
    parser.add_argument(
        "--stage1-share",
        type=float,
        default=0.5,
        help="share of a product's GPU time its stage-1 call takes (per-stage latency at the measured load)",
    )
    parser.set_defaults(handler=_capacity)


def _capacity(args: argparse.Namespace) -> int:
    rest = {
        "latency_s": args.latency_s,
        "pipeline_cpu_ms": args.pipeline_cpu_ms,
        "headroom": args.headroom,
        "max_inflight": args.max_inflight,
        "cascade_share": args.cascade_share,
        "stage1_share": args.stage1_share,
    }
    if args.tokens_per_product is not None:
        if not args.per_gpu_tokens_per_s:
            raise SystemExit("catalogvlm: --tokens-per-product needs --per-gpu-tokens-per-s")
        supply = GpuSupply.from_tokens(args.tokens_per_product, args.per_gpu_tokens_per_s, **rest)
    else:
        supply = GpuSupply(args.per_gpu_products_per_s, **rest)
    result = plan(Demand(args.products_per_day, args.peak_factor), supply)
    print("\n".join(result.arithmetic))
    print(
        json.dumps(
            {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(result).items() if k != "arithmetic"}
        )
    )
    return 0
