"""Qwen2-VL image preprocessing against Hugging Face's processor (which runs on the CPU)."""

from __future__ import annotations

import io
import warnings

import images
import numpy as np
import pytest
from PIL import Image

from catalogvlm.pipeline.errors import InvalidInput
from catalogvlm.pipeline.qwen2vl import Qwen2VLImageSettings, preprocess_image, smart_resize


@pytest.fixture(scope="module")
def reference():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return Qwen2VLImageProcessorPil()


def noise(width: int, height: int, fmt: str = "PNG") -> bytes:
    pixels = np.random.default_rng(width * 7 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("width", "height", "fmt"),
    [
        (500, 300, "PNG"),
        (1920, 1080, "JPEG"),
        (37, 41, "PNG"),
        (2400, 1800, "JPEG"),  # above max_pixels: downscaled
        (28, 28, "PNG"),
        (2000, 40, "PNG"),
    ],
)
def test_pixels_and_grid_equal_hugging_face(reference, width, height, fmt):
    data = noise(width, height, fmt)
    expected = reference(images=[Image.open(io.BytesIO(data)).convert("RGB")], return_tensors="np")
    ours = preprocess_image(data)
    assert ours.grid_thw == tuple(expected["image_grid_thw"][0].tolist())
    assert ours.pixel_values.shape == expected["pixel_values"].shape
    np.testing.assert_allclose(ours.pixel_values, expected["pixel_values"], atol=1e-5, rtol=0)


def test_documented_example_and_token_count():
    ours = preprocess_image(noise(500, 300))
    assert ours.pixel_values.shape == (792, 1176) and ours.grid_thw == (1, 22, 36)
    assert ours.visual_tokens == 22 * 36 // 4 == Qwen2VLImageSettings().visual_tokens(300, 500) == 198


def test_pixel_bounds_are_respected():
    settings = Qwen2VLImageSettings()
    for height, width in [(10, 10), (4000, 3000), (1080, 1920), (29, 57)]:
        h, w = smart_resize(height, width, settings)
        assert h % 28 == 0 and w % 28 == 0
        assert settings.min_pixels <= h * w <= settings.max_pixels
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2_500)


def test_same_guards_as_every_model():
    with pytest.raises(InvalidInput, match="truncated or corrupt"):
        preprocess_image(images.truncated_jpeg())
    cmyk = preprocess_image(images.cmyk_jpeg())
    assert cmyk.pixel_values.dtype == np.float32 and cmyk.grid_thw[0] == 1
