"""A catalog row on its way through the bulk pipeline, and the three records it can end as (plain Python).

Every input row ends as exactly one record: a prediction, a carried-over prediction (its fingerprint matched
the previous run's), or a dead letter (with the gRPC status and message that stopped it). The Beam transforms
(`pipelines.transforms`) only move these values around, so the rules live here, testable without Beam.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from catalogvlm.client import CatalogError, ModelRelease, Prediction, ProductEmbedding
from catalogvlm.errors import INVALID_ARGUMENT
from catalogvlm.pipeline.contract import TEXT_FIELDS, Product

# Where a row's product id comes from when `--id-field` is left at its default: a Shopify export's `handle`
# identifies a product as well as an id does.
DEFAULT_ID_FIELD = "id"
FALLBACK_ID_FIELD = "handle"
IMAGE_FIELD = "image"
DEFAULT_BATCH_SIZE = 64  # of 32, 64 and 128 tried on 1,500 dev-set products (2 cores): the fastest
OUTPUTS = PREDICTIONS, CARRIED_OVER, DEAD_LETTER = ("predictions", "carried_over", "dead_letter")
ANSWERED_OUTPUTS = (PREDICTIONS, CARRIED_OVER)  # what a later run carries over from


@dataclass(frozen=True)
class CatalogProduct:
    """A product read from a catalog: what the server will see, without its image bytes (read at call time)."""

    id: str
    texts: Mapping[str, str]
    image_uri: str | None
    fingerprint: str
    source: str

    def product(self, image: bytes | None) -> Product:
        return Product(**self.texts, image=image)


class RowError(CatalogError):
    """A row that cannot become a product: INVALID_ARGUMENT naming the field, as the server would answer."""

    def __init__(self, field: str, problem: str, product_id: str | None = None) -> None:
        super().__init__(INVALID_ARGUMENT, f"{field}: {problem}")
        self.product_id = product_id


def product_id(row: Mapping[str, Any], id_field: str) -> str:
    fields = (id_field, FALLBACK_ID_FIELD) if id_field == DEFAULT_ID_FIELD else (id_field,)
    for name in fields:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    raise RowError(id_field, f"is missing; every product needs one ({' or '.join(fields)}) to be tracked")


def catalog_product(
    row: Mapping[str, Any],
    source: str,
    id_field: str,
    release: ModelRelease,
    read_image: Callable[[str], bytes],
) -> CatalogProduct:
    """The product of one row. `read_image(reference)` returns the bytes of the row's `image` (a path or URI)."""
    identifier = product_id(row, id_field)
    texts = {name: _text(row.get(name)) for name in TEXT_FIELDS}
    reference = _text(row.get(IMAGE_FIELD)) or None
    image_digest = None
    if reference:
        try:
            image_digest = hashlib.sha256(read_image(reference)).hexdigest()
        except OSError as error:
            raise RowError(IMAGE_FIELD, f"cannot read {reference}: {error}", identifier) from None
    return CatalogProduct(identifier, texts, reference, fingerprint(texts, image_digest, release), source)


def fingerprint(texts: Mapping[str, str], image_sha256: str | None, release: ModelRelease) -> str:
    """Changes when anything the answer depends on changes: the text, the image, the model or the taxonomy."""
    document = {"texts": dict(sorted(texts.items())), "image_sha256": image_sha256, "release": asdict(release)}
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):  # tags as a list (JSONL, Parquet)
        return ", ".join(str(v) for v in value)
    return str(value)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def prediction_record(product: CatalogProduct, release: ModelRelease, prediction: Prediction) -> dict[str, Any]:
    return {
        "id": product.id,
        "fingerprint": product.fingerprint,
        **_release_fields(release),
        "prediction": dict(prediction.raw),
        "latency_ms": round(prediction.latency_s * 1e3, 1),
        "predicted_at": now(),
    }


def embedding_record(product: CatalogProduct, release: ModelRelease, embedding: ProductEmbedding) -> dict[str, Any]:
    """A product's vectors (`catalogvlm embed`), with its title so that a search can show what it found."""
    return {
        "id": product.id,
        "fingerprint": product.fingerprint,
        **_release_fields(release),
        "title": product.texts["title"],
        "text_model": embedding.text_model,
        "text_vector": embedding.text.tolist(),
        "image_model": embedding.image_model if embedding.image is not None else None,
        "image_vector": embedding.image.tolist() if embedding.image is not None else None,
        "embedded_at": now(),
    }


def carried_over_record(previous: Mapping[str, Any]) -> dict[str, Any]:
    """The previous run's record of an unchanged product, as it was, with when it was carried over."""
    return {**previous, "carried_over_at": now()}


def dead_letter_record(product_id: str | None, fingerprint: str | None, source: str, error: CatalogError) -> dict:
    return {
        "id": product_id,
        "fingerprint": fingerprint,
        "source": source,
        "status": error.status,
        "message": error.message,
        "failed_at": now(),
    }


def _release_fields(release: ModelRelease) -> dict[str, str]:
    return {
        "model": release.model,
        "model_version": release.version,
        "taxonomy_release": release.taxonomy_release,
        "catalogvlm_version": release.catalogvlm_version,
    }
