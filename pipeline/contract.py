"""The public contract of the service, in one place: the product type, the models' names and tensors, and
the `vlm` contract the BLS relies on.

The client library re-exports what callers need from here; the BLS builds its `vlm` calls from it and the
static repository validation (builders/validation.py) checks every profile's `vlm` against it. This module
imports nothing heavier than the standard library, so the thin client pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogvlm.errors import INTERNAL, INVALID_ARGUMENT, UNAVAILABLE

PRODUCT_MODEL = "product_understanding"
VALIDATE_MODEL = "taxonomy_validate"
IMAGE_INPUT_NAME = "image"  # product_understanding's encoded image (UINT8 [-1])
CATEGORY_INPUT_NAME = "category"  # taxonomy_validate's paths or ids (BYTES [-1])
RESULT_OUTPUT_NAME = "result"  # both models' JSON answers (BYTES)

# Dynamo's tensor path has no status of its own: a worker raises one of Dynamo's error classes, and its
# KServe frontend answers INTERNAL with "Failed to fold completions stream: <class name>: <message>".
# Per status: the class the worker raises first, then the names the frontend reports it by.
DYNAMO_ERROR_CLASSES: Mapping[str, tuple[str, ...]] = {
    INVALID_ARGUMENT: ("InvalidArgument", "InvalidRequest"),
    UNAVAILABLE: ("WorkerUnavailable", "Unavailable"),
    INTERNAL: ("Unknown",),
}

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
    dims: tuple[int, ...]  # without the batch dimension: `vlm` batches in every profile
    optional: bool = False


VLM_INPUTS = (
    TensorSpec("text_input", "TYPE_STRING", (1,)),
    TensorSpec("image_bytes", "TYPE_UINT8", (-1,), optional=True),
    TensorSpec("max_tokens", "TYPE_INT32", (1,), optional=True),
)
VLM_OUTPUTS = (TensorSpec("text_output", "TYPE_STRING", (1,)),)
TEXT_INPUT, IMAGE_INPUT, MAX_TOKENS_INPUT = (spec.name for spec in VLM_INPUTS)
(TEXT_OUTPUT,) = (spec.name for spec in VLM_OUTPUTS)
