"""The `product_understanding` / `taxonomy_validate` / `product_embeddings` tensor contract, shared by the sync and
async clients."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from catalogvlm.errors import DEADLINE_EXCEEDED, INVALID_ARGUMENT, RETRYABLE_STATUSES, UNAVAILABLE
from catalogvlm.pipeline.contract import (
    CATEGORY_INPUT_NAME,
    EMBEDDING_MODELS_OUTPUT,
    IMAGE_EMBEDDING_OUTPUT,
    IMAGE_INPUT_NAME,
    PRODUCT_MODEL,
    RESULT_OUTPUT_NAME,
    TEXT_EMBEDDING_OUTPUT,
    TEXT_FIELDS,
    VALIDATE_MODEL,
    Product,
    status_from_dynamo,
)

from .types import CatalogError, CategoryResult, ModelRelease, ProductEmbedding

__all__ = ["PRODUCT_MODEL", "RETRYABLE_STATUSES", "VALIDATE_MODEL"]


def product_inputs(product: Product, input_type: Any, batched: bool = False) -> list[Any]:
    """InferInputs for a product; empty optional fields are left out (the model treats them as absent).
    `batched`: with the leading batch dimension of a batching model (product_embeddings)."""
    inputs = []
    for name in TEXT_FIELDS:
        value = getattr(product, name)
        if name == "title" or value:
            inputs.append(_bytes_input(input_type, name, [_utf8(name, value)], batched))
    if product.image is not None:
        if not product.image:  # as the server would answer: a broken download must not pass for "no image"
            raise CatalogError(INVALID_ARGUMENT, "image: is empty")
        data = np.frombuffer(product.image, dtype=np.uint8)
        data = data[None] if batched else data
        image = input_type(IMAGE_INPUT_NAME, list(data.shape), "UINT8")
        image.set_data_from_numpy(data)
        inputs.append(image)
    return inputs


def product_embedding(response: Any) -> ProductEmbedding:
    models = json.loads(response.as_numpy(EMBEDDING_MODELS_OUTPUT).reshape(-1)[0])
    image = response.as_numpy(IMAGE_EMBEDDING_OUTPUT).reshape(-1)
    return ProductEmbedding(
        text=response.as_numpy(TEXT_EMBEDDING_OUTPUT).reshape(-1),
        image=image if image.size else None,
        text_model=models["text"]["model"],
        image_model=models["image"]["model"],
    )


def category_inputs(categories: Sequence[str], input_type: Any) -> list[Any]:
    encoded = [_utf8(f"{CATEGORY_INPUT_NAME}[{i}]", c) for i, c in enumerate(categories)]
    return [_bytes_input(input_type, CATEGORY_INPUT_NAME, encoded)]


def _utf8(name: str, text: str) -> bytes:
    """UTF-8 for the wire; text that has none (a lone surrogate) is refused here, as the server would."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise CatalogError(INVALID_ARGUMENT, f"{name}: is not valid Unicode (character {error.start})") from None


def _bytes_input(input_type: Any, name: str, values: list[bytes], batched: bool = False) -> Any:
    array = np.array(values, dtype=np.object_)
    array = array[None] if batched else array
    tensor = input_type(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def result_json(response: Any) -> dict[str, Any]:
    return json.loads(response.as_numpy(RESULT_OUTPUT_NAME).reshape(-1)[0])


def category_results(response: Any) -> list[CategoryResult]:
    return [CategoryResult(**json.loads(raw)) for raw in response.as_numpy(RESULT_OUTPUT_NAME).reshape(-1)]


# The process that carried the request died (checked with kill -9): Triton 2.51's Python backend answers INTERNAL
# "Stub process ... is not healthy", Dynamo's frontend INTERNAL "... Stream ended before generation completed".
# A prediction has no side effects, so another instance, or the process once restarted, can answer it again.
_PROCESS_LOST = re.compile(r"Stub process '?[\w.-]*'? is not healthy|Stream ended before generation completed")
# Dynamo's frontend is a tonic server: it enforces the caller's grpc-timeout itself and ends the call as
# CANCELLED "Timeout expired", racing the client's own DEADLINE_EXCEEDED. Both mean the caller's deadline passed.
_SERVER_ENFORCED_DEADLINE = "Timeout expired"


def as_catalog_error(error: InferenceServerException) -> CatalogError:
    """The server's status and message; through Dynamo, the status the worker meant (see the contract)."""
    status = str(error.status() or "UNKNOWN").removeprefix("StatusCode.")
    message = error.message() or str(error)
    if status == "INTERNAL" and _PROCESS_LOST.search(message):
        return CatalogError(UNAVAILABLE, message)
    if status == "CANCELLED" and _SERVER_ENFORCED_DEADLINE in message:
        return CatalogError(DEADLINE_EXCEEDED, message)
    restored = status_from_dynamo(message) if status == "INTERNAL" else None
    return CatalogError(*restored) if restored else CatalogError(status, message)


def model_release(metadata: Mapping[str, Any], config: Mapping[str, Any]) -> ModelRelease:
    """From KServe ModelMetadata and Triton's ModelConfig (as JSON); Dynamo serves the same from its worker."""
    parameters = config.get("config", config).get("parameters", {})

    def reported(key: str) -> str:
        return str(parameters.get(key, {}).get("string_value", "unknown"))

    versions = sorted(metadata.get("versions") or ["unknown"], key=lambda v: (len(v), v))
    return ModelRelease(metadata["name"], versions[-1], reported("taxonomy_release"), reported("catalogvlm_version"))


def backoff_delay(attempt: int, base_s: float, cap_s: float = 5.0) -> float:
    """Exponential, with jitter: callers refused together by an overloaded server come back spread out."""
    ceiling = min(cap_s, base_s * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)
