"""The thin gRPC client of catalogvlm: typed products in, typed predictions out (Triton or Dynamo)."""

from .aio import AsyncProductClassifier
from .sync import ProductClassifier
from .types import (
    AttributeResult,
    AttributeValueResult,
    CatalogError,
    CategoryResult,
    Prediction,
    Product,
)

__all__ = [
    "AsyncProductClassifier",
    "AttributeResult",
    "AttributeValueResult",
    "CatalogError",
    "CategoryResult",
    "Prediction",
    "Product",
    "ProductClassifier",
]
