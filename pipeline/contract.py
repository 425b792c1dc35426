"""The public contract of the service, in one place: the product type, the models' names and tensors, and
the `vlm` contract the BLS relies on.

The client library re-exports what callers need from here; the BLS builds its `vlm` calls from it and the
static repository validation (builders/validation.py) checks every profile's `vlm` against it. This module
imports nothing heavier than the standard library, so the thin client pays nothing for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogvlm.errors import INVALID_ARGUMENT

PRODUCT_MODEL = "product_understanding"
VALIDATE_MODEL = "taxonomy_validate"
IMAGE_INPUT_NAME = "image"  # product_understanding's encoded image (UINT8 [-1])
CATEGORY_INPUT_NAME = "category"  # taxonomy_validate's paths or ids (BYTES [-1])
RESULT_OUTPUT_NAME = "result"  # both models' JSON answers (BYTES)
# The keys of Triton's restricted protocols (`serve --api-key/--admin-key`): the name in the server's option, and
# the gRPC metadata a client sends, which Triton prefixes with "triton-grpc-protocol-" (HTTP takes the name).
API_KEY_NAME = "api-key"  # inference and model config
ADMIN_KEY_NAME = "admin-key"  # model repository, shared memory, statistics, trace, logging
API_KEY_HEADER = f"triton-grpc-protocol-{API_KEY_NAME}"
ADMIN_KEY_HEADER = f"triton-grpc-protocol-{ADMIN_KEY_NAME}"

# Dynamo's tensor path has no status of its own: a worker raises one of Dynamo's error classes, and its
# KServe frontend (1.6.1) answers INTERNAL with "Failed to fold completions stream: <class>: <message>".
# Only InvalidArgument keeps its meaning (folded as "InvalidRequest"). The classes that mean "unavailable"
# (WorkerUnavailable, EngineShutdown, ...) make the frontend take the worker out of rotation: checked here,
# after one WorkerUnavailable every later request got "model temporarily unavailable". So every other
# status travels as Unknown (folded as "Internal") with the status name leading the message.
DYNAMO_INVALID_ARGUMENT_CLASS = "InvalidArgument"
DYNAMO_OTHER_ERROR_CLASS = "Unknown"
_DYNAMO_FOLDED = re.compile(r"^Failed to fold completions stream: (\w+): (.*)$", re.DOTALL)
_STATUS_IN_MESSAGE = re.compile(r"^([A-Z_]+): (.*)$", re.DOTALL)


def dynamo_error(status: str, message: str) -> tuple[str, str]:
    """(Dynamo error class name, message) a worker raises for an error of `status`."""
    if status == INVALID_ARGUMENT:
        return DYNAMO_INVALID_ARGUMENT_CLASS, message
    return DYNAMO_OTHER_ERROR_CLASS, f"{status}: {message}"


def status_from_dynamo(message: str) -> tuple[str, str] | None:
    """(status, message) of an error `dynamo_error` sent, read back from the frontend's INTERNAL message."""
    folded = _DYNAMO_FOLDED.match(message)
    if folded is None:
        return None
    error_class, text = folded.groups()
    if error_class in ("InvalidRequest", DYNAMO_INVALID_ARGUMENT_CLASS):
        return INVALID_ARGUMENT, text
    tagged = _STATUS_IN_MESSAGE.match(text)
    return (tagged.group(1), tagged.group(2)) if tagged and error_class == "Internal" else None


TEXT_FIELDS = ("title", "description", "product_type", "vendor", "tags")


@dataclass(frozen=True)
class Product:
    """A product as merchants describe it; the request type of the client and of the pipeline alike."""

    title: str
    description: str = ""
    product_type: str = ""
    vendor: str = ""
    tags: str = ""
    image: bytes | None = field(default=None, repr=False)

    def text_fields(self) -> dict[str, str]:
        """The non-empty text fields, in the order a model should read them."""
        return {name: getattr(self, name) for name in TEXT_FIELDS if getattr(self, name)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any], base_dir: Path | None = None) -> Product:
        """A JSONL/CSV row: title, description, vendor, product_type, tags, image (a file path)."""
        image_path = record.get("image") or ""
        image = None
        if image_path:
            path = Path(image_path)
            path = path if path.is_absolute() or base_dir is None else base_dir / path
            image = path.read_bytes()
        tags = record.get("tags") or ""
        return cls(
            title=str(record.get("title") or ""),
            description=str(record.get("description") or ""),
            product_type=str(record.get("product_type") or ""),
            vendor=str(record.get("vendor") or ""),
            tags=", ".join(tags) if isinstance(tags, list) else str(tags),
            image=image,
        )


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's TYPE_* name
    dims: tuple[int, ...]  # without the batch dimension of a batching model
    optional: bool = False


VLM_INPUTS = (
    TensorSpec("text_input", "TYPE_STRING", (1,)),
    TensorSpec("image_bytes", "TYPE_UINT8", (-1,), optional=True),
    TensorSpec("max_tokens", "TYPE_INT32", (1,), optional=True),
)
VLM_OUTPUTS = (TensorSpec("text_output", "TYPE_STRING", (1,)),)
TEXT_INPUT, IMAGE_INPUT, MAX_TOKENS_INPUT = (spec.name for spec in VLM_INPUTS)
(TEXT_OUTPUT,) = (spec.name for spec in VLM_OUTPUTS)

# NVIDIA's TensorRT-LLM LLM-API Triton model (triton_backend/all_models/llmapi/tensorrt_llm), which the gpu profile
# serves in the `vlm` slot unchanged: the BLS speaks its own tensors. It has no batch dimension (max_batch_size 0)
# and needs none: each request becomes a task on the LLM API's event loop, so the executor batches products in
# flight. The names are checked against NVIDIA's files at the pinned release (builders/reference/).
LLMAPI_INPUTS = (
    TensorSpec("text_input", "TYPE_STRING", (-1,)),
    TensorSpec("image_url", "TYPE_STRING", (-1,), optional=True),  # http(s) or data: URIs, one per image
    TensorSpec("sampling_param_max_tokens", "TYPE_INT32", (1,), optional=True),
    TensorSpec("sampling_param_temperature", "TYPE_FP32", (1,), optional=True),
)
LLMAPI_OUTPUTS = (TensorSpec("text_output", "TYPE_STRING", (-1,)),)
(LLMAPI_TEXT_OUTPUT,) = (spec.name for spec in LLMAPI_OUTPUTS)
LLMAPI_TEXT_INPUT, LLMAPI_IMAGE_INPUT, LLMAPI_MAX_TOKENS_INPUT, LLMAPI_TEMPERATURE_INPUT = (
    spec.name for spec in LLMAPI_INPUTS
)


@dataclass(frozen=True)
class VlmProtocol:
    """The tensors the BLS exchanges with the model in the `vlm` slot (product_understanding's `vlm_protocol`)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batching: bool  # the model has a batch dimension (max_batch_size > 0)


VLM_PROTOCOLS = {
    protocol.name: protocol
    for protocol in (
        VlmProtocol("catalogvlm", VLM_INPUTS, VLM_OUTPUTS, batching=True),  # the CPU engine, the gpu-engine ensemble
        VlmProtocol("llmapi", LLMAPI_INPUTS, LLMAPI_OUTPUTS, batching=False),  # NVIDIA's LLM-API model
    )
}


# category_candidates: the retrieval step every profile runs before stage 1 (the candidates put in the prompt,
# and the cascade's answer when the first is sure enough). A product's text fields in, one JSON answer out.
CANDIDATES_MODEL = "category_candidates"
CANDIDATES_INPUTS = (
    *(TensorSpec(name, "TYPE_STRING", (1,), optional=name != "title") for name in TEXT_FIELDS),
    TensorSpec("top_k", "TYPE_INT32", (1,), optional=True),
)
CANDIDATES_OUTPUTS = (TensorSpec("candidates", "TYPE_STRING", (1,)),)
TOP_K_INPUT = CANDIDATES_INPUTS[-1].name
(CANDIDATES_OUTPUT,) = (spec.name for spec in CANDIDATES_OUTPUTS)


# product_embeddings (every profile): a product's text fields and optional image (product_understanding's inputs)
# in; a unit-length text vector, an image vector (empty without an image) and what encoded them (JSON: each
# encoder's model and dimension) out.
EMBEDDINGS_MODEL = "product_embeddings"
EMBEDDINGS_OUTPUTS = (
    TensorSpec("text_embedding", "TYPE_FP32", (-1,)),
    TensorSpec("image_embedding", "TYPE_FP32", (-1,)),
    TensorSpec("embedding_models", "TYPE_STRING", (1,)),
)
TEXT_EMBEDDING_OUTPUT, IMAGE_EMBEDDING_OUTPUT, EMBEDDING_MODELS_OUTPUT = (spec.name for spec in EMBEDDINGS_OUTPUTS)
