"""Qwen2-VL image preprocessing: encoded bytes -> `pixel_values` (patches, 1176) and `image_grid_thw`.

The defaults are those of Hugging Face's Qwen2VLImageProcessor: 14-pixel patches, temporal patch 2, 2×2 merge,
each side resized to a multiple of 28 with the pixel count within [3136, 1003520] (bicubic), rescale by 1/255,
CLIP mean/std normalisation. tests/test_qwen2vl_preprocess.py checks equality with that processor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..images import decoded_rgb
from ..limits import Limits


@dataclass(frozen=True)
class Qwen2VLImageSettings:
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 14 * 14 * 4 * 1280
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def visual_tokens(self, height: int, width: int) -> int:
        """Tokens the vision encoder emits for an image of this size (t·h·w / merge²)."""
        resized_h, resized_w = smart_resize(height, width, self)
        return (resized_h // self.patch_size) * (resized_w // self.patch_size) // self.merge_size**2


@dataclass(frozen=True)
class PreprocessedImage:
    pixel_values: np.ndarray  # float32 (grid_t·grid_h·grid_w, 3·temporal·patch·patch)
    grid_thw: tuple[int, int, int]

    @property
    def visual_tokens(self) -> int:
        t, h, w = self.grid_thw
        return t * h * w // 4


def smart_resize(height: int, width: int, settings: Qwen2VLImageSettings = Qwen2VLImageSettings()) -> tuple[int, int]:
    """Each side a multiple of `factor`, the pixel count within bounds, the aspect ratio kept closely."""
    factor = settings.factor
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} exceeds 200")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > settings.max_pixels:
        beta = math.sqrt(height * width / settings.max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < settings.min_pixels:
        beta = math.sqrt(settings.min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def preprocess_image(
    data: bytes, limits: Limits | None = None, settings: Qwen2VLImageSettings = Qwen2VLImageSettings()
) -> PreprocessedImage:
    """Decode (with the same guards as every model) and turn into Qwen2-VL patches."""
    with decoded_rgb(data, limits or Limits()) as rgb:
        return patchify_rgb(rgb, settings)


def patchify_rgb(rgb: Image.Image, settings: Qwen2VLImageSettings = Qwen2VLImageSettings()) -> PreprocessedImage:
    height, width = smart_resize(rgb.height, rgb.width, settings)
    resized = rgb.resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float32) * np.float32(1 / 255)
    pixels = (pixels - np.asarray(settings.mean, np.float32)) / np.asarray(settings.std, np.float32)
    patch, merge, temporal = settings.patch_size, settings.merge_size, settings.temporal_patch_size
    grid_h, grid_w = height // patch, width // patch
    # (H, W, C) -> (gh/m, m, p, gw/m, m, p, C) -> (gh/m, gw/m, m, m, C, p, p): merge groups stay contiguous.
    patches = pixels.reshape(grid_h // merge, merge, patch, grid_w // merge, merge, patch, 3)
    patches = patches.transpose(0, 3, 1, 4, 6, 2, 5)
    patches = np.broadcast_to(patches[:, :, :, :, :, None], (*patches.shape[:5], temporal, patch, patch))
    return PreprocessedImage(
        np.ascontiguousarray(patches.reshape(grid_h * grid_w, 3 * temporal * patch * patch)), (1, grid_h, grid_w)
    )
