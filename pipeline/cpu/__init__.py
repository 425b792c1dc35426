"""The CPU engine: answers the `vlm` contract from the taxonomy, without a GPU or a generative model."""

from .engine import CpuVlmEngine

__all__ = ["CpuVlmEngine"]
