"""`catalogvlm render-repo`, `build-cache` and `build-engines`: artifacts, built without serving anything."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from catalogvlm.pipeline.cpu.embeddings import build_category_vectors
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint, Qwen2VLImageSettings, Qwen2VLPromptEncoder
from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from .budget import BudgetSettings, TokenBudget, estimate_memory, measure_budget
from .engines import (
    ENGINE_TRITON_IMAGE,
    ENGINE_TRTLLM_RELEASE,
    BuildStep,
    EngineLayout,
    engine_build_steps,
    engine_repository_values,
    llmapi_build_steps,
    llmapi_repository_values,
    run_steps,
)
from .llmapi import DEFAULT_MAX_BATCH_SIZE as LLMAPI_MAX_BATCH_SIZE
from .llmapi import MODELOPT_EXAMPLES_DIR, TRITON_LLMAPI_IMAGE, LlmApiLimits
from .repository import PROFILES, parse_assignments, render_repository
from .validation import validate_repository

GPU_PROFILES = ("gpu", "gpu-engine")
# Where each profile's image (docker/Dockerfile, docker/Dockerfile.engine) has the scripts build-engines runs.
DEFAULT_EXAMPLES = {"gpu": Path(MODELOPT_EXAMPLES_DIR), "gpu-engine": Path("/app/tensorrt_llm/examples")}
DEFAULT_MAX_BATCH_SIZE = {"gpu": LLMAPI_MAX_BATCH_SIZE, "gpu-engine": BudgetSettings().max_batch_size}
IMAGES = {
    "gpu": f"{TRITON_LLMAPI_IMAGE} with its TensorRT-LLM (LLM API, PyTorch backend) and ModelOpt",
    "gpu-engine": f"TensorRT-LLM {ENGINE_TRTLLM_RELEASE} ({ENGINE_TRITON_IMAGE}), legacy engine path",
}


def register(subcommands: argparse._SubParsersAction) -> None:
    render = subcommands.add_parser("render-repo", help="render a deployable Triton model repository")
    render.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--taxonomy", metavar="DIR")
    render.add_argument("--set", dest="values", action="append", default=[], metavar="KEY=VALUE")
    render.set_defaults(handler=_render)
    cache = subcommands.add_parser("build-cache", help="embed the taxonomy's categories once (CPU profile)")
    cache.add_argument("--taxonomy", metavar="DIR")
    cache.add_argument("--out", type=Path, default=EMBEDDINGS_DIR)
    cache.set_defaults(handler=_build_cache)
    _register_build_engines(subcommands)


def _register_build_engines(subcommands: argparse._SubParsersAction) -> None:
    defaults = BudgetSettings()
    engines = subcommands.add_parser(
        "build-engines",
        help="export Qwen2-VL in FP8 for a GPU profile (gpu: ModelOpt checkpoint; gpu-engine: TensorRT engines) "
        "and render its repository",
    )
    engines.add_argument("--profile", choices=GPU_PROFILES, default="gpu")
    engines.add_argument("--hf-model", type=Path, required=True, help="Hugging Face Qwen2-VL checkpoint folder")
    engines.add_argument("--out", type=Path, required=True)
    engines.add_argument("--tokenizer-dir", type=Path, help="default: --hf-model")
    engines.add_argument(
        "--examples", type=Path, help="ModelOpt's examples (gpu) or TensorRT-LLM's (gpu-engine); default: the image's"
    )
    engines.add_argument("--taxonomy", metavar="DIR")
    engines.add_argument(
        "--max-batch-size", type=int, help="sequences in flight (gpu, default 64) or the engines' batch (gpu-engine, 8)"
    )
    engines.add_argument("--max-pixels", type=int, default=defaults.max_pixels)
    engines.add_argument("--max-product-tokens", type=int, default=defaults.max_product_tokens)
    engines.add_argument("--max-output-tokens", type=int, default=defaults.max_output_tokens)
    engines.add_argument(
        "--candidates-top-k", type=int, default=defaults.candidates_top_k, help="candidates in the category prompt"
    )
    engines.add_argument("--calib-size", type=int, default=512)
    engines.add_argument("--gpu-gib", type=float, default=80, help="for the memory estimate")
    engines.add_argument("--dry-run", action="store_true", help="print every command; needs only config.json")
    engines.set_defaults(handler=_build_engines)


def _render(args: argparse.Namespace) -> int:
    values = {"taxonomy_dir": str(taxonomy_dir(args.taxonomy))}
    if "embeddings_dir" in PROFILES[args.profile].required:
        values["embeddings_dir"] = str(EMBEDDINGS_DIR)
    rendered = render_repository(args.profile, args.out, {**values, **parse_assignments(args.values)})
    validate_repository(rendered.path)
    print(f"rendered profile {rendered.profile} into {rendered.path} (validated): {', '.join(rendered.models)}")
    return 0


def _build_cache(args: argparse.Namespace) -> int:
    root = taxonomy_dir(args.taxonomy)
    for path in build_category_vectors(root, args.out):
        print(path)
    return 0


def _build_engines(args: argparse.Namespace) -> int:
    checkpoint = Qwen2VLCheckpoint.from_dir(args.hf_model)
    tokenizer_dir = args.tokenizer_dir or args.hf_model
    max_batch_size = args.max_batch_size or DEFAULT_MAX_BATCH_SIZE[args.profile]
    settings = BudgetSettings(
        max_batch_size, args.max_pixels, args.max_product_tokens, args.max_output_tokens, args.candidates_top_k
    )
    taxonomy_path = taxonomy_dir(args.taxonomy)
    budget = measure_budget(
        Qwen2VLPromptEncoder.from_dirs(tokenizer_dir, checkpoint),
        load_taxonomy(taxonomy_path),
        Qwen2VLImageSettings(max_pixels=settings.max_pixels),
        settings,
    )
    print(f"# {IMAGES[args.profile]}: run inside its image (docker/)")
    layout = EngineLayout(args.hf_model, args.out, args.examples or DEFAULT_EXAMPLES[args.profile])
    steps, values, kv_fraction = _profile_build(args, layout, budget, taxonomy_path, tokenizer_dir)
    print(_budget_report(budget, checkpoint, args.gpu_gib, kv_fraction))
    values = {"taxonomy_dir": str(taxonomy_path), **values}
    if args.dry_run:
        print("\n\n".join(step.render() for step in steps))
        sets = " ".join(f"--set {key}={shlex.quote(value)}" for key, value in values.items() if key != "taxonomy_dir")
        print(
            f"\n# the {args.profile} repository for them\ncatalogvlm render-repo --profile {args.profile} "
            f"--out {layout.repository} --taxonomy {taxonomy_path} {sets}"
        )
        return 0
    run_steps(steps)
    render_repository(args.profile, layout.repository, values)
    validate_repository(layout.repository)
    print(f"{args.profile} artifacts in {args.out}; repository in {layout.repository} (validated)")
    return 0


def _profile_build(
    args: argparse.Namespace, layout: EngineLayout, budget: TokenBudget, taxonomy_path: Path, tokenizer_dir: Path
) -> tuple[list[BuildStep], dict[str, str], float]:
    """The profile's steps, its repository's values, and the KV-cache memory fraction it runs with."""
    if args.profile == "gpu":
        limits = LlmApiLimits(max_seq_len=budget.max_seq_len, max_batch_size=budget.settings.max_batch_size)
        steps = llmapi_build_steps(layout, limits, taxonomy_path, args.calib_size)
        return steps, llmapi_repository_values(layout, limits, args.candidates_top_k), limits.free_gpu_memory_fraction
    steps = engine_build_steps(layout, budget, taxonomy_path, args.calib_size)
    kv_fraction = float(PROFILES["gpu-engine"].defaults["kv_cache_free_gpu_mem_fraction"])
    return steps, engine_repository_values(layout, budget, tokenizer_dir), kv_fraction


def _budget_report(budget: TokenBudget, checkpoint: Qwen2VLCheckpoint, gpu_gib: float, kv_fraction: float) -> str:
    memory = estimate_memory(checkpoint, gpu_gib, kv_fraction)
    s = budget.settings
    rows = [
        ("visual tokens per image", f"{budget.visual_tokens_per_image} (max_pixels {s.max_pixels:,})"),
        (
            "category prompt (measured)",
            f"{budget.category_prompt_tokens} tokens ({s.candidates_top_k} longest candidate paths)",
        ),
        (
            "attribute prompt, longest menu (measured)",
            f"{budget.attribute_prompt_tokens} tokens ({budget.longest_menu_category})",
        ),
        ("product text allowance", f"{s.max_product_tokens} tokens"),
        ("output tokens", f"{s.max_output_tokens}"),
        ("max_input_len / max_seq_len", f"{budget.max_input_len} / {budget.max_seq_len}"),
        ("gpu-engine: max_multimodal_len / max_num_tokens", f"{budget.max_multimodal_len} / {budget.max_num_tokens}"),
        (
            "weights: language FP8 / vision FP16",
            f"{memory.language_weights_bytes / 1e9:.1f} GB / {memory.vision_weights_bytes / 1e9:.2f} GB",
        ),
        (
            "KV cache (FP8)",
            f"{memory.kv_bytes_per_token / 1024:.0f} KiB per token; {memory.kv_cache_bytes / 2**30:.0f} GiB"
            f" on a {gpu_gib:g} GiB GPU at fraction {memory.kv_cache_free_gpu_mem_fraction} = "
            f"{memory.kv_cache_tokens:,} tokens = {memory.kv_cache_tokens // budget.max_seq_len} full sequences",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "# token budget and memory per product\n" + "\n".join(f"# {n:<{width}}  {v}" for n, v in rows) + "\n"
