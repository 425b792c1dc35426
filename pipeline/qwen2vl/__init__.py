"""Qwen2-VL specifics of the GPU profile that run (and are verified) on the CPU: image preprocessing."""

from .preprocess import PreprocessedImage, Qwen2VLImageSettings, preprocess_image, smart_resize

__all__ = ["PreprocessedImage", "Qwen2VLImageSettings", "preprocess_image", "smart_resize"]
