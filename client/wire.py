"""The `product_understanding` / `taxonomy_validate` tensor contract, shared by the sync and async clients."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from catalogvlm.errors import INVALID_ARGUMENT, RETRYABLE_STATUSES
from catalogvlm.pipeline.contract import (
    CATEGORY_INPUT_NAME,
    DYNAMO_ERROR_CLASSES,
    IMAGE_INPUT_NAME,
    PRODUCT_MODEL,
    RESULT_OUTPUT_NAME,
    TEXT_FIELDS,
    VALIDATE_MODEL,
    Product,
)

from .types import CatalogError, CategoryResult

__all__ = ["PRODUCT_MODEL", "RETRYABLE_STATUSES", "VALIDATE_MODEL"]


def product_inputs(product: Product, input_type: Any) -> list[Any]:
    """InferInputs for a product; empty optional fields are left out (the model treats them as absent)."""
    inputs = []
    for name in TEXT_FIELDS:
        value = getattr(product, name)
        if name == "title" or value:
            inputs.append(_bytes_input(input_type, name, [value.encode("utf-8")]))
    if product.image is not None:
        if not product.image:  # as the server would answer: a broken download must not pass for "no image"
            raise CatalogError(INVALID_ARGUMENT, "image: is empty")
        image = input_type(IMAGE_INPUT_NAME, [len(product.image)], "UINT8")
        image.set_data_from_numpy(np.frombuffer(product.image, dtype=np.uint8))
        inputs.append(image)
    return inputs


def category_inputs(categories: Sequence[str], input_type: Any) -> list[Any]:
    return [_bytes_input(input_type, CATEGORY_INPUT_NAME, [c.encode("utf-8") for c in categories])]


def _bytes_input(input_type: Any, name: str, values: list[bytes]) -> Any:
    tensor = input_type(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_))
    return tensor


def result_json(response: Any) -> dict[str, Any]:
    return json.loads(response.as_numpy(RESULT_OUTPUT_NAME).reshape(-1)[0])


def category_results(response: Any) -> list[CategoryResult]:
    return [CategoryResult(**json.loads(raw)) for raw in response.as_numpy(RESULT_OUTPUT_NAME).reshape(-1)]


# Dynamo's KServe frontend (1.6.1) answers every worker-side error on the tensor path with INTERNAL and
# "Failed to fold completions stream: <ErrorClass>: <message>". The worker raises the Dynamo error class the
# contract names for the status, so the client restores the status Triton gives for the same request.
_DYNAMO_FOLDED = re.compile(r"^Failed to fold completions stream: (\w+): (.*)$", re.DOTALL)
_STATUS_OF_DYNAMO_CLASS = {name: status for status, names in DYNAMO_ERROR_CLASSES.items() for name in names}


def as_catalog_error(error: InferenceServerException) -> CatalogError:
    status = str(error.status() or "UNKNOWN").removeprefix("StatusCode.")
    message = error.message() or str(error)
    folded = _DYNAMO_FOLDED.match(message) if status == "INTERNAL" else None
    if folded and folded.group(1) in _STATUS_OF_DYNAMO_CLASS:
        return CatalogError(_STATUS_OF_DYNAMO_CLASS[folded.group(1)], folded.group(2))
    return CatalogError(status, message)


def backoff_delay(attempt: int, base_s: float, cap_s: float = 5.0) -> float:
    return min(cap_s, base_s * (2**attempt))
