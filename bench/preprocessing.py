"""Qwen2-VL image preprocessing: ours vs. Hugging Face's Qwen2VLImageProcessor (PIL backend), one run.

Both sides start from the encoded JPEG bytes, as the `preprocess` model receives them.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable

import numpy as np
from catalogvlm.pipeline.qwen2vl import preprocess_image
from PIL import Image

SIZES = ((500, 300), (1280, 960), (1920, 1080))


def _jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(width + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def report(quick: bool) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        reference = Qwen2VLImageProcessorPil()
    repeats = 3 if quick else 20
    rows = ["| image | ours ms | Hugging Face ms | speed-up | max abs diff |", "|---|---|---|---|---|"]
    for width, height in SIZES:
        data = _jpeg(width, height)

        def theirs(data: bytes = data) -> dict:
            return reference(images=[Image.open(io.BytesIO(data)).convert("RGB")], return_tensors="np")

        ours_ms = _median_ms(lambda data=data: preprocess_image(data), repeats)
        theirs_ms = _median_ms(theirs, repeats)
        difference = float(np.abs(preprocess_image(data).pixel_values - theirs()["pixel_values"]).max())
        speedup = theirs_ms / ours_ms
        rows.append(f"| {width}×{height} JPEG | {ours_ms:.1f} | {theirs_ms:.1f} | {speedup:.2f}× | {difference:.1e} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(report(quick=False))
