"""`catalogvlm render-repo`, `build-cache` and `build-engines`: artifacts, built without serving anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint, Qwen2VLImageSettings, Qwen2VLPromptEncoder
from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from .budget import BudgetSettings, TokenBudget, estimate_memory, measure_budget
from .engines import TRITON_TRTLLM_IMAGE, TRTLLM_RELEASE, EngineLayout, build_steps, gpu_repository_values, run_steps
from .repository import PROFILES, parse_assignments, render_repository
from .validation import validate_repository

DEFAULT_TRTLLM_EXAMPLES = Path("/app/tensorrt_llm/examples")  # where docker/Dockerfile puts TensorRT-LLM


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
        "build-engines", help="build the FP8 Qwen2-VL engines and render the gpu repository for them"
    )
    engines.add_argument("--hf-model", type=Path, required=True, help="Hugging Face Qwen2-VL checkpoint folder")
    engines.add_argument("--out", type=Path, required=True)
    engines.add_argument("--tokenizer-dir", type=Path, help="default: --hf-model")
    engines.add_argument("--trtllm-examples", type=Path, default=DEFAULT_TRTLLM_EXAMPLES)
    engines.add_argument("--taxonomy", metavar="DIR")
    engines.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
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
    print(CategoryEmbeddingCache(root, args.out).build(load_taxonomy(root)))
    return 0


def _build_engines(args: argparse.Namespace) -> int:
    checkpoint = Qwen2VLCheckpoint.from_dir(args.hf_model)
    tokenizer_dir = args.tokenizer_dir or args.hf_model
    settings = BudgetSettings(
        args.max_batch_size, args.max_pixels, args.max_product_tokens, args.max_output_tokens, args.candidates_top_k
    )
    taxonomy_path = taxonomy_dir(args.taxonomy)
    budget = measure_budget(
        Qwen2VLPromptEncoder.from_dirs(tokenizer_dir, checkpoint),
        load_taxonomy(taxonomy_path),
        Qwen2VLImageSettings(max_pixels=settings.max_pixels),
        settings,
    )
    print(f"# TensorRT-LLM {TRTLLM_RELEASE} ({TRITON_TRTLLM_IMAGE}): run inside docker/Dockerfile's image")
    print(_budget_report(budget, checkpoint, args.gpu_gib))
    layout = EngineLayout(args.hf_model, args.out, args.trtllm_examples)
    steps = build_steps(layout, budget, taxonomy_path, args.calib_size)
    values = {"taxonomy_dir": str(taxonomy_path), **gpu_repository_values(layout, budget, tokenizer_dir)}
    if args.dry_run:
        print("\n\n".join(step.render() for step in steps))
        sets = " ".join(f"--set {key}={value}" for key, value in values.items() if key != "taxonomy_dir")
        print(
            f"\n# the gpu repository for these engines\ncatalogvlm render-repo --profile gpu --out {layout.repository} "
            f"--taxonomy {taxonomy_path} {sets}"
        )
        return 0
    run_steps(steps)
    render_repository("gpu", layout.repository, values)
    validate_repository(layout.repository)
    print(f"engines in {args.out}; repository in {layout.repository} (validated)")
    return 0


def _budget_report(budget: TokenBudget, checkpoint: Qwen2VLCheckpoint, gpu_gib: float) -> str:
    memory = estimate_memory(checkpoint, gpu_gib)
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
        ("max_multimodal_len / max_num_tokens", f"{budget.max_multimodal_len} / {budget.max_num_tokens}"),
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
