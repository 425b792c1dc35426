"""`catalogvlm build-engines`: the GPU artifacts of a profile, and its repository rendered for them.

- gpu (supported): ModelOpt's FP8 export of the Hugging Face checkpoint (a unified HF checkpoint with FP8 weights
  and FP8 KV-cache scales) and the LLM API's options file. The same two serve Triton's llmapi model and Dynamo's
  trtllm workers.
- gpu-engine (legacy): TensorRT-LLM 0.21's FP8 language engine and FP16 vision engine.

The steps are NVIDIA's own tools, run inside the profile's container (docker/). Limits come from the measured token
budget (budget.py); `--dry-run` prints every command in full and needs only the checkpoint's config.json and
tokenizer.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .budget import TokenBudget
from .llmapi import LlmApiLimits, options_yaml
from .repository import GPU_EMBEDDINGS, GPU_FP8_CHECKPOINT

# gpu-engine's version set (README "GPU profile", docker/Dockerfile.engine): its commands are TensorRT-LLM 0.21's.
ENGINE_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.08-trtllm-python-py3"
ENGINE_TRTLLM_RELEASE = "v0.21.0"

LLM_ENGINE = "llm"
VISION_ENGINE = "vision"
REPOSITORY = "triton_model_repo"
LLM_API_OPTIONS = "llm_api_options.yaml"
# TensorRT-LLM's example scripts, relative to its examples/ folder (v0.21 layout)
QUANTIZE_SCRIPT = Path("quantization/quantize.py")
MULTIMODAL_BUILDER = Path("models/core/multimodal/build_multimodal_engine.py")
# ModelOpt's post-training quantization script, relative to its examples/ folder
PTQ_SCRIPT = Path("llm_ptq/hf_ptq.py")
# What the LLM API's Qwen2-VL input processor reads beside the weights; ModelOpt's export writes the weights, the
# config and the tokenizer, so the image processor's files are copied from the original checkpoint.
PROCESSOR_FILES = ("preprocessor_config.json", "chat_template.json", "chat_template.jinja", "generation_config.json")


@dataclass(frozen=True)
class BuildStep:
    description: str
    argv: tuple[str, ...] = ()
    action: Callable[[], None] | None = None  # in-process steps (no command to run)

    def render(self) -> str:
        return f"# {self.description}\n" + (
            shlex.join(self.argv) if self.argv else "# (catalogvlm does this step itself)"
        )


@dataclass(frozen=True)
class EngineLayout:
    hf_model: Path
    out: Path
    examples: Path  # TensorRT-LLM's examples (gpu-engine) or ModelOpt's (gpu)

    @property
    def checkpoint(self) -> Path:
        return self.out / GPU_FP8_CHECKPOINT

    @property
    def llm_api_options(self) -> Path:
        return self.out / LLM_API_OPTIONS

    @property
    def llm_engine(self) -> Path:
        return self.out / LLM_ENGINE

    @property
    def vision_engine(self) -> Path:
        return self.out / VISION_ENGINE

    @property
    def repository(self) -> Path:
        return self.out / REPOSITORY

    @property
    def embeddings(self) -> Path:
        return self.out / GPU_EMBEDDINGS


def embeddings_step(layout: EngineLayout, taxonomy_dir: Path) -> BuildStep:
    return BuildStep(
        "category embeddings for category_candidates (retrieval on the CPU: grounded prompts, the cost cascade)",
        ("catalogvlm", "build-cache", "--taxonomy", str(taxonomy_dir), "--out", str(layout.embeddings)),
    )


def llmapi_build_steps(
    layout: EngineLayout, limits: LlmApiLimits, taxonomy_dir: Path, calib_size: int = 512
) -> list[BuildStep]:
    """gpu: no engine to build. The PyTorch backend loads ModelOpt's FP8 export as it is; in-flight batching and
    the paged KV cache are its executor's, sized by the LLM API's options at load time."""
    return [
        embeddings_step(layout, taxonomy_dir),
        BuildStep(
            "FP8 weights and FP8 KV cache with ModelOpt calibration, exported as a unified Hugging Face checkpoint",
            (
                "python3", str(layout.examples / PTQ_SCRIPT),
                "--pyt_ckpt_path", str(layout.hf_model),
                "--qformat", "fp8",
                "--kv_cache_qformat", "fp8",
                "--calib_size", str(calib_size),
                "--export_path", str(layout.checkpoint),
            ),
        ),
        BuildStep(
            f"the image processor's files beside the export: {', '.join(PROCESSOR_FILES)} (those the checkpoint has)",
            action=lambda: copy_processor_files(layout.hf_model, layout.checkpoint),
        ),
        BuildStep(
            f"the LLM API's options in {layout.llm_api_options} (Triton's model.yaml has the same; Dynamo's "
            f"trtllm workers load this file):\n# " + options_yaml(limits).replace("\n", "\n# "),
            action=lambda: layout.llm_api_options.write_text(options_yaml(limits) + "\n", encoding="utf-8"),
        ),
    ]  # fmt: skip


def copy_processor_files(hf_model: Path, checkpoint: Path) -> None:
    for name in PROCESSOR_FILES:
        if (hf_model / name).is_file() and not (checkpoint / name).exists():
            shutil.copy2(hf_model / name, checkpoint / name)


def engine_build_steps(
    layout: EngineLayout, budget: TokenBudget, taxonomy_dir: Path, calib_size: int = 512
) -> list[BuildStep]:
    limits = budget.settings
    return [
        embeddings_step(layout, taxonomy_dir),
        BuildStep(
            "FP8 weights and FP8 KV cache with ModelOpt calibration (TensorRT-LLM checkpoint)",
            (
                "python3", str(layout.examples / QUANTIZE_SCRIPT),
                "--model_dir", str(layout.hf_model),
                "--dtype", "float16",
                "--qformat", "fp8",
                "--kv_cache_dtype", "fp8",
                "--calib_size", str(calib_size),
                "--output_dir", str(layout.checkpoint),
            ),
        ),
        BuildStep(
            f"size the mRoPE/rotary tables to max_seq_len={budget.max_seq_len}: set max_position_embeddings in "
            f"{layout.checkpoint / 'config.json'} (the encoder then sends {budget.max_seq_len} rows, not 32,768)",
            action=lambda: limit_position_embeddings(layout.checkpoint / "config.json", budget.max_seq_len),
        ),
        BuildStep(
            f"language engine: in-flight batching, paged KV cache, FP8 context FMHA; input = "
            f"{budget.instruction_tokens} instruction tokens (longest menu, one image pad) + "
            f"{budget.visual_tokens_per_image - 1} more image + {limits.max_product_tokens} product tokens; "
            f"{limits.max_output_tokens} output tokens",
            (
                "trtllm-build",
                "--checkpoint_dir", str(layout.checkpoint),
                "--output_dir", str(layout.llm_engine),
                "--gemm_plugin", "auto",
                "--use_paged_context_fmha", "enable",
                "--use_fp8_context_fmha", "enable",
                "--max_batch_size", str(limits.max_batch_size),
                "--max_input_len", str(budget.max_input_len),
                "--max_seq_len", str(budget.max_seq_len),
                "--max_multimodal_len", str(budget.max_multimodal_len),
                "--max_num_tokens", str(budget.max_num_tokens),
            ),
        ),
        BuildStep(
            f"vision engine (FP16): up to {budget.patches_per_image} patches per image, {limits.max_batch_size} images",
            (
                "python3", str(layout.examples / MULTIMODAL_BUILDER),
                "--model_type", "qwen2_vl",
                "--model_path", str(layout.hf_model),
                "--output_dir", str(layout.vision_engine),
                "--max_batch_size", str(limits.max_batch_size),
                "--max_hw_dims", str(budget.patches_per_image),
            ),
        ),
    ]  # fmt: skip


def limit_position_embeddings(config_path: Path, rows: int) -> None:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["max_position_embeddings"] = rows
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def run_steps(steps: list[BuildStep]) -> None:
    for step in steps:
        print(step.render(), flush=True)
        if step.action is not None:
            step.action()
        else:
            subprocess.run(step.argv, check=True)


def llmapi_repository_values(layout: EngineLayout, limits: LlmApiLimits, top_k: int) -> dict[str, str]:
    """The `render-repo --profile gpu` values that point the repository at this export and these options."""
    return {
        "llmapi_checkpoint_dir": str(layout.checkpoint),
        "llm_api_options": options_yaml(limits),
        "candidates_top_k": str(top_k),
        "embeddings_dir": str(layout.embeddings),
    }


def engine_repository_values(layout: EngineLayout, budget: TokenBudget, tokenizer_dir: Path) -> dict[str, str]:
    """The `render-repo --profile gpu-engine` values that point the repository at these engines and limits."""
    return {
        "hf_model_dir": str(layout.hf_model),
        "tokenizer_dir": str(tokenizer_dir),
        "engine_dir": str(layout.llm_engine),
        "visual_engine_dir": str(layout.vision_engine),
        "triton_max_batch_size": str(budget.settings.max_batch_size),
        "max_input_len": str(budget.max_input_len),
        "max_seq_len": str(budget.max_seq_len),
        "max_pixels": str(budget.settings.max_pixels),
        "attribute_max_tokens": str(budget.settings.max_output_tokens),
        "candidates_top_k": str(budget.settings.candidates_top_k),
        "embeddings_dir": str(layout.embeddings),
    }
