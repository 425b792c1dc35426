"""The `product_understanding` / `taxonomy_validate` tensor contract, shared by the sync and async clients."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from .types import CatalogError, CategoryResult, Product

PRODUCT_MODEL = "product_understanding"
VALIDATE_MODEL = "taxonomy_validate"
TEXT_FIELDS = ("title", "description", "product_type", "vendor", "tags")
RETRYABLE = frozenset({"UNAVAILABLE"})


def product_inputs(product: Product, input_type: Any) -> list[Any]:
    """InferInputs for a product; empty optional fields are left out (the model treats them as absent)."""
    inputs = []
    for name in TEXT_FIELDS:
        value = getattr(product, name)
        if name == "title" or value:
            inputs.append(_bytes_input(input_type, name, [value.encode("utf-8")]))
    if product.image:
        image = input_type("image", [len(product.image)], "UINT8")
        image.set_data_from_numpy(np.frombuffer(product.image, dtype=np.uint8))
        inputs.append(image)
    return inputs


def category_inputs(categories: Sequence[str], input_type: Any) -> list[Any]:
    return [_bytes_input(input_type, "category", [c.encode("utf-8") for c in categories])]


def _bytes_input(input_type: Any, name: str, values: list[bytes]) -> Any:
    tensor = input_type(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_))
    return tensor


def result_json(response: Any) -> dict[str, Any]:
    return json.loads(response.as_numpy("result").reshape(-1)[0])


def category_results(response: Any) -> list[CategoryResult]:
    return [CategoryResult(**json.loads(raw)) for raw in response.as_numpy("result").reshape(-1)]


def as_catalog_error(error: InferenceServerException) -> CatalogError:
    status = str(error.status() or "UNKNOWN").removeprefix("StatusCode.")
    return CatalogError(status, error.message() or str(error))


def backoff_delay(attempt: int, base_s: float, cap_s: float = 5.0) -> float:
    return min(cap_s, base_s * (2**attempt))
