"""Rendering a deployable Triton model repository for a profile, with strict template filling.

Each model folder is copied from `model_repository/` (or `ensembles/`); a `config.pbtxt.tmpl` becomes
`config.pbtxt` with `${key}` placeholders filled. A placeholder without a value, or a value that no
template uses (a misspelt `--set` key), is an error at render time, not a surprise at load time.
"""

from __future__ import annotations

import shutil
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from catalogvlm import __version__
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.candidates import DEFAULT_TOP_K
from catalogvlm.pipeline.contract import CANDIDATES_MODEL, EMBEDDINGS_MODEL
from catalogvlm.pipeline.limits import Limits
from catalogvlm.taxonomy import TaxonomyError, release_of

from .llmapi import LLMAPI_MODEL_DIR, LLMAPI_MODEL_FILES, LlmApiLimits, options_yaml

TEMPLATE_SUFFIX = ".tmpl"
# Shipped as package data: the same paths from a checkout (editable install) and from an installed wheel.
MODEL_SOURCES = Path(str(files("catalogvlm.model_repository")))
ENSEMBLE_SOURCES = Path(str(files("catalogvlm.ensembles")))


class RenderError(ConfigurationError, ValueError):
    """A template and its values do not fit together."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    source: Path
    values: Mapping[str, str] = field(default_factory=dict)  # this model's own overrides
    # More files for the model folder, e.g. {"1/my_engine.py": path}: Triton puts the version folder on the
    # model's import path, so an `engine_factory` can name a module shipped beside model.py.
    files: Mapping[str, Path] = field(default_factory=dict)
    # Symbolic links to files of the serving image, e.g. {"1/model.py": "${llmapi_model_dir}/model.py"}: NVIDIA's
    # own model code is linked where the image has it, never copied into this repository. Targets are templates.
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    models: tuple[ServedModel, ...]
    defaults: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _limit_defaults() -> dict[str, str]:
    return {name: str(value) for name, value in Limits().__dict__.items()}


# What product_understanding, taxonomy_validate and category_candidates need in every profile.
_PIPELINE_DEFAULTS = {
    # Each instance carries up to max_inflight products on its event loop; instances add CPU, not concurrency.
    "bls_instances": "2",
    "max_inflight": "256",
    "max_inflight_image_mib": "512",
    "validate_instances": "1",
    "vlm_model_name": "vlm",
    "vlm_protocol": "catalogvlm",
    "vlm_timeout_ms": "0",
    "max_retries_per_stage": "2",
    "category_max_tokens": "256",
    "attribute_max_tokens": "512",
    "result_cache_mib": "64",
    "candidates_model_name": CANDIDATES_MODEL,
    "candidates_top_k": str(DEFAULT_TOP_K),
    # Off until a deployment has measured its VLM against retrieval (catalogvlm eval's cascade table).
    "cascade_threshold": "off",
    "candidates_instances": "2",  # as many as the CPU engine's: retrieval now does the embedding pass
    "candidates_max_batch_size": "16",
    "candidates_max_queue_delay_microseconds": "2000",
    "embeddings_instances": "1",
    "embeddings_text_model": "all-MiniLM-L6-v2",
    "embeddings_max_batch_size": "32",
    "embeddings_max_queue_delay_microseconds": "2000",
}

# For measurements of the model path (benchmarks, soak): a repeated product must cost a model call.
NO_RESULT_CACHE = {"result_cache_mib": "0"}
# For measurements of the chain alone with a stand-in `vlm` (benchmark sections 1 and 6): no retrieval step, whose
# CPU embedding pass would bound what they measure (its cost shows in the CPU profile's own figures).
NO_RETRIEVAL = {"candidates_top_k": "0"}

# Documented locations inside the GPU container (docker/); `build-engines` renders its own paths instead.
GPU_HF_MODEL_DIR = "/models/Qwen2-VL-7B-Instruct"
GPU_ENGINE_ROOT = "/engines/qwen2-vl-7b"
GPU_EMBEDDINGS = "category_embeddings"  # category_candidates' embeddings beside the engines (built on the CPU)
GPU_FP8_CHECKPOINT = "checkpoint_fp8"  # ModelOpt's FP8 export (gpu) or TensorRT-LLM's FP8 checkpoint (gpu-engine)
LLMAPI_MODEL = "tensorrt_llm"  # NVIDIA's LLM-API model, as NVIDIA names it
# The token budget `build-engines` measures for its default settings (tests/test_gpu_profile.py re-measures it).
GPU_DEFAULT_MAX_INPUT_LEN = 4517
GPU_DEFAULT_MAX_SEQ_LEN = 5029
GPU_DEFAULT_MAX_PIXELS = 28 * 28 * 512


CPU_ENGINE_FACTORY = "catalogvlm.pipeline.cpu:CpuVlmEngine.from_parameters"


def python_thread_pool_size(values: Mapping[str, str]) -> int:
    """tritonserver's `--backend-config=python,thread-pool-size`: the Python backend (2.51) serves each BLS
    call of an instance on one thread of that instance's pool (python_be.cc, default 32), so the pool must
    hold one thread per product in flight, or the pool, not max_inflight, bounds concurrency."""
    return int(values["max_inflight"]) + 16


def _derived_values(values: Mapping[str, str]) -> dict[str, str]:
    """Values that follow from others, so they can never disagree with them."""
    derived = {"catalogvlm_version": __version__}
    if "taxonomy_dir" in values and "taxonomy_release" not in values:  # the service checks it on load
        derived["taxonomy_release"] = _release_in(values["taxonomy_dir"])
    return derived


def _release_in(taxonomy_dir: str) -> str:
    try:
        return release_of(taxonomy_dir)
    except TaxonomyError as error:
        raise RenderError(f"{error}; to render for another machine, --set taxonomy_release=RELEASE") from None


def _pipeline_models() -> tuple[ServedModel, ...]:
    return (
        ServedModel("product_understanding", MODEL_SOURCES / "product_understanding"),
        ServedModel("taxonomy_validate", MODEL_SOURCES / "taxonomy_validate"),
        ServedModel(CANDIDATES_MODEL, MODEL_SOURCES / "category_candidates"),
        ServedModel(EMBEDDINGS_MODEL, MODEL_SOURCES / "product_embeddings"),
    )


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        models=(*_pipeline_models(), ServedModel("vlm", MODEL_SOURCES / "engine_vlm")),
        defaults={
            **_PIPELINE_DEFAULTS,
            "vlm_instances": "2",
            "engine_factory": CPU_ENGINE_FACTORY,
            "engine_max_batch_size": "16",
            "engine_max_queue_delay_microseconds": "2000",
            **_limit_defaults(),
        },
        required=("taxonomy_dir", "embeddings_dir"),
    ),
    "gpu": Profile(
        name="gpu",
        models=(
            *_pipeline_models(),
            ServedModel(
                LLMAPI_MODEL,
                MODEL_SOURCES / "llmapi",
                links={f"1/{name}": f"${{llmapi_model_dir}}/{name}" for name in LLMAPI_MODEL_FILES},
            ),
        ),
        defaults={
            **_PIPELINE_DEFAULTS,
            "vlm_model_name": LLMAPI_MODEL,
            "vlm_protocol": "llmapi",
            "llmapi_model_dir": LLMAPI_MODEL_DIR,
            "llmapi_checkpoint_dir": f"{GPU_ENGINE_ROOT}/{GPU_FP8_CHECKPOINT}",
            "llm_api_options": options_yaml(LlmApiLimits(max_seq_len=GPU_DEFAULT_MAX_SEQ_LEN)),
            "embeddings_dir": f"{GPU_ENGINE_ROOT}/{GPU_EMBEDDINGS}",  # build-engines builds it there
            **_limit_defaults(),
        },
        required=("taxonomy_dir",),
    ),
    "gpu-engine": Profile(
        name="gpu-engine",
        models=(
            *_pipeline_models(),
            ServedModel("vlm", ENSEMBLE_SOURCES / "vlm"),
            ServedModel("preprocess", MODEL_SOURCES / "preprocess"),
            ServedModel("multimodal_encoders", MODEL_SOURCES / "multimodal_encoders"),
            ServedModel("tensorrt_llm", MODEL_SOURCES / "tensorrt_llm"),
            ServedModel("postprocess", MODEL_SOURCES / "postprocess"),
        ),
        defaults={
            **_PIPELINE_DEFAULTS,
            "triton_max_batch_size": "8",
            "preprocess_instances": "4",
            "postprocess_instances": "2",
            "max_queue_delay_microseconds": "100",
            "hf_model_dir": GPU_HF_MODEL_DIR,
            "tokenizer_dir": GPU_HF_MODEL_DIR,
            "engine_dir": f"{GPU_ENGINE_ROOT}/llm",
            "visual_engine_dir": f"{GPU_ENGINE_ROOT}/vision",
            "max_input_len": str(GPU_DEFAULT_MAX_INPUT_LEN),
            "max_seq_len": str(GPU_DEFAULT_MAX_SEQ_LEN),
            "max_pixels": str(GPU_DEFAULT_MAX_PIXELS),
            "kv_cache_free_gpu_mem_fraction": "0.9",
            "batch_scheduler_policy": "guaranteed_no_evict",
            "embeddings_dir": f"{GPU_ENGINE_ROOT}/{GPU_EMBEDDINGS}",  # build-engines builds it there
            **_limit_defaults(),
        },
        required=("taxonomy_dir",),
    ),
}


@dataclass(frozen=True)
class RenderedRepository:
    path: Path
    profile: str
    models: tuple[str, ...]
    values: Mapping[str, str]


def render_repository(
    profile_name: str, out_dir: Path, values: Mapping[str, str], extra_models: tuple[ServedModel, ...] = ()
) -> RenderedRepository:
    """Render `profile_name` into `out_dir` (replacing what a previous render left there)."""
    profile = PROFILES.get(profile_name)
    if profile is None:
        raise RenderError(f"unknown profile {profile_name!r}; choose one of {', '.join(PROFILES)}")
    missing_required = [key for key in profile.required if key not in values]
    if missing_required:
        raise RenderError(f"profile {profile_name} needs a value for {', '.join(missing_required)}")
    merged = {**profile.defaults, **values}
    merged |= _derived_values(merged)
    replaced = {model.name for model in extra_models}  # an extra model of a profile model's name takes its place
    models = tuple(m for m in profile.models if m.name not in replaced) + extra_models
    templates = {model.name: _templates(model) for model in models}
    used = {identifier for found in templates.values() for _, t in found for identifier in t.get_identifiers()}
    used |= {
        i for model in models for target in model.links.values() for i in string.Template(target).get_identifiers()
    }
    # What a caller set beyond the profile's own inputs (a misspelt --set key is an error); a profile default
    # or input may go unused when an extra model replaces the one that read it.
    given = (set(values) - set(profile.required)).union(*(m.values for m in models))
    unknown = sorted(given - used - {"model_name"})
    if unknown:
        raise RenderError(f"no template of profile {profile_name} uses {', '.join(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_other_models(out_dir, {model.name for model in models})
    for model in models:
        target = out_dir / model.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model.source, target, ignore=shutil.ignore_patterns("__pycache__", f"*{TEMPLATE_SUFFIX}"))
        for relative, source in model.files.items():
            shutil.copy2(source, target / relative)
        model_values = {**merged, **model.values, "model_name": model.name}
        for relative, template in templates[model.name]:
            text = fill(template, model_values, f"{model.name}/{relative}")
            (target / relative.removesuffix(TEMPLATE_SUFFIX)).write_text(text, encoding="utf-8")
        for relative, link in model.links.items():
            (target / relative).symlink_to(fill(string.Template(link), model_values, f"{model.name}/{relative}"))
    return RenderedRepository(out_dir, profile_name, tuple(m.name for m in models), merged)


def _remove_other_models(out_dir: Path, keep: set[str]) -> None:
    """Models an earlier render left (another profile, a benchmark's extras) would be served too."""
    for stale in out_dir.glob("*/config.pbtxt"):
        if stale.parent.name not in keep:
            shutil.rmtree(stale.parent)


def fill(template: string.Template, values: Mapping[str, str], where: str) -> str:
    if not template.is_valid():
        raise RenderError(f"{where}: malformed placeholder (a '$' not followed by a ${{name}})")
    missing = sorted(set(template.get_identifiers()) - set(values))
    if missing:
        raise RenderError(f"{where}: no value for {', '.join(missing)}")
    return template.substitute(values)


def _templates(model: ServedModel) -> list[tuple[str, string.Template]]:
    if not model.source.is_dir():
        raise RenderError(f"model source {model.source} does not exist")
    return [
        (str(path.relative_to(model.source)), string.Template(path.read_text(encoding="utf-8")))
        for path in sorted(model.source.rglob(f"*{TEMPLATE_SUFFIX}"))
    ]


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """`--set key=value` arguments as a mapping."""
    values = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key.strip():
            raise RenderError(f"--set expects key=value, got {assignment!r}")
        values[key.strip()] = value
    return values
