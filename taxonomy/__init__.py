"""The Shopify Product Taxonomy: loading, the category/attribute index, correction and validation."""

from .correction import CategoryCorrector, validate_query
from .index import Taxonomy, load_taxonomy, release_of
from .model import (
    Attribute,
    AttributeValue,
    Category,
    CorrectedCategory,
    GoogleCategory,
    MenuAttribute,
    TaxonomyDataError,
    TaxonomyError,
    TaxonomyInputError,
)

__all__ = [
    "Attribute",
    "AttributeValue",
    "Category",
    "CategoryCorrector",
    "CorrectedCategory",
    "GoogleCategory",
    "MenuAttribute",
    "Taxonomy",
    "TaxonomyDataError",
    "TaxonomyError",
    "TaxonomyInputError",
    "load_taxonomy",
    "release_of",
    "validate_query",
]
