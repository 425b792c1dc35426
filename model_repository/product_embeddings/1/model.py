"""Triton's entry point for this model: the model class lives in catalogvlm.pipeline.adapters.triton_models."""

from catalogvlm.pipeline.adapters.triton_models import ProductEmbeddingsModel as TritonPythonModel

__all__ = ["TritonPythonModel"]
