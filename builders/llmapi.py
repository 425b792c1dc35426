"""The gpu profile's supported path: NVIDIA's TensorRT-LLM LLM-API Triton model (PyTorch backend) over a ModelOpt
FP8 checkpoint, and what it must agree with.

- The version set (README "GPU profile", docker/Dockerfile).
- The LLM API's options, written once: into the llmapi model's `model.yaml` (Triton) and into build-engines'
  `llm_api_options.yaml` (Dynamo's `dynamo.trtllm --extra-engine-args`), so both routes run one configuration.
- The reference extract of NVIDIA's files (builders/reference/, written by `nvidia_reference.py`), which static
  validation compares the rendered model with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

# The newest Triton container NVIDIA's release notes name (Triton 26.10); the TensorRT-LLM inside it is the one
# whose llmapi model the image links (docker/Dockerfile checks out NVIDIA's model at that wheel's own tag).
TRITON_LLMAPI_IMAGE = "nvcr.io/nvidia/tritonserver:26.10-trtllm-python-py3"
# Where docker/Dockerfile puts NVIDIA's llmapi model and ModelOpt's PTQ examples.
TRTLLM_SOURCE_DIR = "/opt/tensorrt_llm"
LLMAPI_MODEL_SUBDIR = "triton_backend/all_models/llmapi/tensorrt_llm"
LLMAPI_MODEL_DIR = f"{TRTLLM_SOURCE_DIR}/{LLMAPI_MODEL_SUBDIR}/1"
MODELOPT_EXAMPLES_DIR = "/opt/modelopt/examples"
LLMAPI_MODEL_FILES = ("model.py", "helpers.py")  # NVIDIA's, linked into the rendered model's version folder

REFERENCE = "trtllm_llmapi.json"
# tensorrt_llm.LLM arguments we set beyond NVIDIA's sample model.yaml; names as in TensorRT-LLM's
# tensorrt_llm/llmapi/llm_args.py (TorchLlmArgs, KvCacheConfig), and the same as the Dynamo trtllm workers take.
LLM_ARGUMENTS = frozenset(
    {"max_batch_size", "max_num_tokens", "max_seq_len", "enable_chunked_prefill", "kv_cache_config"}
)
KV_CACHE_ARGUMENTS = frozenset({"enable_block_reuse", "free_gpu_memory_fraction", "dtype"})
DEFAULT_MAX_BATCH_SIZE = 64  # sequences in flight


@dataclass(frozen=True)
class LlmApiLimits:
    """In-flight limits of the LLM API executor. Unlike the engine path, the batch is not bounded by a vision
    engine's dense attention mask: the PyTorch backend encodes each image on its own."""

    max_seq_len: int  # the measured token budget (builders/budget.py)
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_num_tokens: int = 8192
    free_gpu_memory_fraction: float = 0.85


def llm_api_options(limits: LlmApiLimits) -> dict[str, Any]:
    """FP8 KV cache with block reuse (every prompt starts with the shared instructions) and chunked prefill."""
    return {
        "max_batch_size": limits.max_batch_size,
        "max_num_tokens": limits.max_num_tokens,
        "max_seq_len": limits.max_seq_len,
        "enable_chunked_prefill": True,
        "kv_cache_config": {
            "enable_block_reuse": True,
            "free_gpu_memory_fraction": limits.free_gpu_memory_fraction,
            "dtype": "fp8",
        },
    }


def options_yaml(limits: LlmApiLimits) -> str:
    """The options as YAML: the file Dynamo loads, and the block the model.yaml template takes."""
    return yaml.safe_dump(llm_api_options(limits), sort_keys=False).rstrip("\n")


@cache
def nvidia_reference() -> dict[str, Any]:
    """NVIDIA's llmapi model as the reference extract records it: tensors, model.yaml keys, provenance."""
    return json.loads(files("catalogvlm.builders").joinpath("reference", REFERENCE).read_text(encoding="utf-8"))
