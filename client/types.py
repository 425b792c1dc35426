"""What callers get back, as typed values (what they send, `Product`, is the pipeline contract's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalogvlm.errors import CatalogvlmError


class CatalogError(CatalogvlmError):
    """Any failure of a call: `status` is the gRPC status name, `message` the server's own words."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ModelRelease:
    """What a served model answers with, as the server reports it: a change in any field can change answers."""

    model: str
    version: str
    taxonomy_release: str
    catalogvlm_version: str


@dataclass(frozen=True)
class CategoryResult:
    id: str
    full_name: str
    score: float  # of the correction: 100 for a path the model wrote validly
    corrected: bool
    model_output: str = ""
    confidence: float | None = None  # the chance this category (or a coarser one) is right, when the engine says
    source: str = "vlm"  # who answered: "vlm", or "retrieval" (the cost cascade, over cascade_threshold)


@dataclass(frozen=True)
class AttributeValueResult:
    id: str
    name: str


@dataclass(frozen=True)
class AttributeResult:
    id: str
    handle: str
    name: str
    values: tuple[AttributeValueResult, ...]


@dataclass(frozen=True)
class Prediction:
    category: CategoryResult
    simplified_description: str
    image_description: str
    attributes: tuple[AttributeResult, ...]
    dropped_values: tuple[Mapping[str, str], ...]
    retries: int
    latency_s: float
    truncated_fields: tuple[str, ...]  # cut to what the prompt reads (the rest was not read)
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_result(cls, result: Mapping[str, Any], latency_s: float) -> Prediction:
        return cls(
            category=CategoryResult(**result["category"]),
            simplified_description=result.get("simplified_description", ""),
            image_description=result.get("image_description", ""),
            attributes=tuple(
                AttributeResult(a["id"], a["handle"], a["name"], tuple(AttributeValueResult(**v) for v in a["values"]))
                for a in result.get("attributes", ())
            ),
            dropped_values=tuple(result.get("dropped_values", ())),
            retries=int(result.get("retries", 0)),
            latency_s=latency_s,
            truncated_fields=tuple(result.get("truncated_fields", ())),
            raw=result,
        )


@dataclass(frozen=True)
class ProductEmbedding:
    """A product's unit-length vectors from `product_embeddings`, and the encoders that made them."""

    text: np.ndarray  # float32 (text dim,)
    image: np.ndarray | None  # float32 (image dim,); None when the product had no image
    text_model: str
    image_model: str
