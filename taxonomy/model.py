"""Typed, immutable records of the Shopify Product Taxonomy."""

from __future__ import annotations

from dataclasses import dataclass

from catalogvlm.errors import INVALID_ARGUMENT, CatalogvlmError, ConfigurationError

CATEGORY_GID_PREFIX = "gid://shopify/TaxonomyCategory/"


class TaxonomyError(CatalogvlmError):
    """Base of every error this package raises."""


class TaxonomyDataError(TaxonomyError, ConfigurationError):
    """The release files are missing, malformed or inconsistent."""


class TaxonomyInputError(TaxonomyError, ValueError):
    """A caller passed something that cannot be looked up (empty, too long, not text)."""

    status = INVALID_ARGUMENT


@dataclass(frozen=True, slots=True)
class AttributeValue:
    id: str
    name: str
    handle: str


@dataclass(frozen=True, slots=True)
class Attribute:
    """A base attribute of attributes.json with its controlled list of values."""

    id: str
    name: str
    handle: str
    description: str
    values: tuple[AttributeValue, ...]


@dataclass(frozen=True, slots=True)
class MenuAttribute:
    """An attribute as one category offers it.

    An `extended` attribute has its own name and handle (e.g. "Diaper features") but shares the
    base attribute's id and values (e.g. "Absorbent hygiene product features").
    """

    id: str
    name: str
    handle: str
    description: str
    extended: bool
    values: tuple[AttributeValue, ...]


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    full_name: str
    level: int
    parent_id: str | None
    children_ids: tuple[str, ...]
    attributes: tuple[MenuAttribute, ...]

    @property
    def short_id(self) -> str:
        return self.id.removeprefix(CATEGORY_GID_PREFIX)

    @property
    def vertical_short_id(self) -> str:
        return self.short_id.split("-", 1)[0]

    @property
    def is_leaf(self) -> bool:
        return not self.children_ids

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.full_name.split(" > "))


@dataclass(frozen=True, slots=True)
class GoogleCategory:
    id: int
    full_name: str


@dataclass(frozen=True, slots=True)
class CorrectedCategory:
    """The answer of category correction: the valid category nearest to what was asked."""

    id: str
    full_name: str
    score: float
    corrected: bool

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "full_name": self.full_name, "score": self.score, "corrected": self.corrected}
