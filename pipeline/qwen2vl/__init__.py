"""Qwen2-VL specifics of the GPU profile that run (and are verified) on the CPU: image preprocessing, prompt
ids with fake image ids, mRoPE and ViT positions, the token budget. Nothing here imports torch or TensorRT-LLM.
"""

from .checkpoint import CheckpointError, Qwen2VLCheckpoint, VisionConfig
from .preprocess import PreprocessedImage, Qwen2VLImageSettings, preprocess_image, smart_resize
from .tokens import EncodedPrompt, Qwen2VLPromptEncoder, prompt_table_key

__all__ = [
    "CheckpointError",
    "EncodedPrompt",
    "PreprocessedImage",
    "Qwen2VLCheckpoint",
    "Qwen2VLImageSettings",
    "Qwen2VLPromptEncoder",
    "VisionConfig",
    "preprocess_image",
    "prompt_table_key",
    "smart_resize",
]
