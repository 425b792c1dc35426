"""Loading a Shopify Product Taxonomy release (`dist/en/`) into an immutable index."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from .model import (
    CATEGORY_GID_PREFIX,
    Attribute,
    AttributeValue,
    Category,
    GoogleCategory,
    MenuAttribute,
    TaxonomyDataError,
)

REQUIRED_FILES = ("categories.json", "attributes.json")
GOOGLE_CROSSWALK_FILE = "shopify_to_google.tsv"


class Taxonomy:
    """Categories by id and by full path, their tree, attribute menus and the Google crosswalk."""

    def __init__(
        self,
        version: str,
        categories: Mapping[str, Category],
        attributes: Mapping[str, Attribute],
        google: Mapping[str, GoogleCategory] | None = None,
    ) -> None:
        self.version = version
        self._by_id = dict(categories)
        self._by_full_name = {c.full_name: c for c in categories.values()}
        self._attributes = dict(attributes)
        self._google = dict(google or {})

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_id.values())

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    @property
    def attributes(self) -> Mapping[str, Attribute]:
        return MappingProxyType(self._attributes)

    @cached_property
    def verticals(self) -> tuple[Category, ...]:
        return tuple(c for c in self if c.level == 0)

    @cached_property
    def value_count(self) -> int:
        return sum(len(a.values) for a in self._attributes.values())

    def get(self, category_id: str) -> Category | None:
        """A category by gid or short id (`aa-1-2`)."""
        if not category_id.startswith(CATEGORY_GID_PREFIX):
            category_id = CATEGORY_GID_PREFIX + category_id
        return self._by_id.get(category_id)

    def by_full_name(self, full_name: str) -> Category | None:
        return self._by_full_name.get(full_name)

    def category(self, category_id: str) -> Category:
        found = self.get(category_id)
        if found is None:
            raise KeyError(f"unknown category id {category_id!r}")
        return found

    def parent(self, category: Category) -> Category | None:
        return self._by_id[category.parent_id] if category.parent_id else None

    def children(self, category: Category) -> tuple[Category, ...]:
        return tuple(self._by_id[c] for c in category.children_ids)

    def ancestors(self, category: Category) -> tuple[Category, ...]:
        """From the vertical down to the parent."""
        chain = []
        parent = self.parent(category)
        while parent is not None:
            chain.append(parent)
            parent = self.parent(parent)
        return tuple(reversed(chain))

    def google_category(self, category: Category) -> GoogleCategory | None:
        return self._google.get(category.id)


def load_taxonomy(directory: str | Path) -> Taxonomy:
    """Read a release folder (the layout of Shopify/product-taxonomy's `dist/en/`)."""
    root = Path(directory)
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise TaxonomyDataError(f"taxonomy folder {root} lacks {', '.join(missing)}")
    categories_doc = _read_json(root / "categories.json")
    attributes = _parse_attributes(_read_json(root / "attributes.json"))
    categories = _parse_categories(categories_doc, attributes)
    listing = root / "categories.txt"
    if listing.is_file():
        _check_listing_agrees(listing, categories)
    google = _read_google_crosswalk(root / GOOGLE_CROSSWALK_FILE)
    return Taxonomy(_release(categories_doc), categories, attributes, google)


def release_of(directory: str | Path) -> str:
    """The release a taxonomy folder holds (its categories.json `version`), without building the index."""
    path = Path(directory) / "categories.json"
    if not path.is_file():
        raise TaxonomyDataError(f"taxonomy folder {directory} lacks categories.json")
    return _release(_read_json(path))


def _release(categories_doc: dict) -> str:
    return str(categories_doc.get("version", "unknown"))


def _read_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise TaxonomyDataError(f"cannot read {path}: {error}") from error


def _parse_attributes(document: dict) -> dict[str, Attribute]:
    try:
        return {
            raw["id"]: Attribute(
                id=raw["id"],
                name=raw["name"],
                handle=raw["handle"],
                description=raw.get("description", ""),
                values=tuple(AttributeValue(v["id"], v["name"], v["handle"]) for v in raw["values"]),
            )
            for raw in document["attributes"]
        }
    except (KeyError, TypeError) as error:
        raise TaxonomyDataError(f"attributes.json: malformed attribute ({error!r})") from error


def _parse_categories(document: dict, attributes: Mapping[str, Attribute]) -> dict[str, Category]:
    categories: dict[str, Category] = {}
    try:
        for vertical in document["verticals"]:
            for raw in vertical["categories"]:
                categories[raw["id"]] = Category(
                    id=raw["id"],
                    name=raw["name"],
                    full_name=raw["full_name"],
                    level=int(raw["level"]),
                    parent_id=raw.get("parent_id"),
                    children_ids=tuple(child["id"] for child in raw.get("children", ())),
                    attributes=tuple(_menu_attribute(a, attributes) for a in raw.get("attributes", ())),
                )
    except (KeyError, TypeError, ValueError) as error:
        raise TaxonomyDataError(f"categories.json: malformed category ({error!r})") from error
    return categories


def _menu_attribute(raw: dict, attributes: Mapping[str, Attribute]) -> MenuAttribute:
    base = attributes.get(raw["id"])
    if base is None:
        raise TaxonomyDataError(f"category attribute {raw['id']} ({raw.get('name')}) is not in attributes.json")
    return MenuAttribute(
        id=base.id,
        name=raw.get("name", base.name),
        handle=raw.get("handle", base.handle),
        description=raw.get("description", base.description),
        extended=bool(raw.get("extended", False)),
        values=base.values,
    )


def _check_listing_agrees(listing: Path, categories: Mapping[str, Category]) -> None:
    listed = {}
    for line in listing.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        gid, _, full_name = line.partition(" : ")
        listed[gid.strip()] = full_name.strip()
    disagreeing = [gid for gid, c in categories.items() if listed.get(gid) != c.full_name]
    if disagreeing or len(listed) != len(categories):
        raise TaxonomyDataError(
            f"categories.txt and categories.json disagree ({len(listed)} vs {len(categories)} categories, "
            f"first difference: {disagreeing[:1]})"
        )


def _read_google_crosswalk(path: Path) -> dict[str, GoogleCategory]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            CATEGORY_GID_PREFIX + row["shopify_id"]: GoogleCategory(int(row["google_id"]), row["google_full_name"])
            for row in csv.DictReader(handle, delimiter="\t")
            if row.get("google_id")
        }
