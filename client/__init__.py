"""The thin gRPC client of catalogvlm: typed products in, typed predictions out (Triton or Dynamo)."""

from catalogvlm.pipeline.contract import Product

from .aio import AsyncProductClassifier
from .sync import ProductClassifier
from .types import (
    AttributeResult,
    AttributeValueResult,
    CatalogError,
    CategoryResult,
    ModelRelease,
    Prediction,
    ProductEmbedding,
)

__all__ = [
    "AsyncProductClassifier",
    "AttributeResult",
    "AttributeValueResult",
    "CatalogError",
    "CategoryResult",
    "ModelRelease",
    "Prediction",
    "Product",
    "ProductClassifier",
    "ProductEmbedding",
]
