"""Labelled products as the eval files hold them: merchant_products_dev.csv's rows (category label in
`label_shopify_gid`) and merchant_attributes_dev.jsonl's (`category_gid`, and the merchant's attribute values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from catalogvlm.client.cli import read_rows
from catalogvlm.pipeline.contract import TEXT_FIELDS, Product

LABEL_COLUMNS = ("label_shopify_gid", "category_gid")
ATTRIBUTES_KEY = "attributes"  # {attribute handle: [value handle, ...]}, the merchant's own values
STORE_COLUMN = "source_repo"  # the store a row was exported from: the unit of leave-stores-out validation


@dataclass(frozen=True)
class LabelledProduct:
    store: str
    product: Product
    category: str  # short id; "" when the row has no category label
    attributes: Mapping[str, list[str]] | None  # the merchant's value handles per attribute, when the file has them


def text_fields(row: Mapping[str, object]) -> dict[str, str]:
    """The product's text fields as the catalog holds them (a JSONL row's tags are a list)."""
    return Product.from_record({field: row.get(field) for field in TEXT_FIELDS}).text_fields()


def label_column(row: Mapping[str, object]) -> str | None:
    return next((c for c in LABEL_COLUMNS if c in row), None)


def labelled(row: Mapping[str, object]) -> LabelledProduct:
    column = label_column(row)
    category = str(row.get(column) or "") if column else ""
    return LabelledProduct(
        store=str(row.get(STORE_COLUMN, "")),
        product=Product.from_record(text_fields(row)),
        category=category.rsplit("/", 1)[-1],
        attributes=row.get(ATTRIBUTES_KEY),  # type: ignore[arg-type]
    )


def read_labelled(paths: Iterable[Path]) -> list[LabelledProduct]:
    """Every row of the files (CSV or JSONL); raises OSError or ValueError for an unreadable file."""
    return [labelled(row) for path in paths for row in read_rows(path)]
