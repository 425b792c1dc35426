"""What callers send and get back, as typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CatalogError(Exception):
    """Any failure of a call: `status` is the gRPC status name, `message` the server's own words."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


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
class CategoryResult:
    id: str
    full_name: str
    score: float
    corrected: bool
    model_output: str = ""


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
            raw=result,
        )
