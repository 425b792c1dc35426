"""Hypothesis strategies for the serving contract's inputs, and the fuzzing profiles.

`HYPOTHESIS_PROFILE=ci` (the default) keeps the suite fast and repeatable (seeded, bounded examples);
`HYPOTHESIS_PROFILE=long` is the run a user starts to hunt for more (`pytest tests/test_fuzz_*.py`).
"""

from __future__ import annotations

import os

import images
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci", max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# Examples per target through a real server: each is a request, so fewer than the unit-level ones.
SERVING_EXAMPLES = {"ci": 25, "long": 1_000}[os.environ.get("HYPOTHESIS_PROFILE", "ci")]


def _frames() -> bytes:
    return images.animated_gif()


def _huge_declared_png() -> bytes:
    """A valid PNG header declaring 60,000 × 60,000 pixels, with no data behind it."""
    return images.decompression_bomb_png(side=64)[:16] + bytes.fromhex("0000ea600000ea60") + b"\x08\x02\x00\x00\x00"


SEEDS = {
    "jpeg": lambda: images.product_photo(),
    "png": lambda: images.product_photo(fmt="PNG"),
    "gif": _frames,
    "webp": lambda: images.product_photo(fmt="WEBP"),
    "cmyk": images.cmyk_jpeg,
    "rgba": images.rgba_png,
    "16-bit": images.sixteen_bit_png,
    "exif": images.exif_rotated_jpeg,
    "huge-declared": _huge_declared_png,
}
_SEED_BYTES = {name: make() for name, make in SEEDS.items()}


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A real image of an accepted format or mode, then one mutation a broken upload or an attacker makes."""
    data = bytearray(_SEED_BYTES[draw(st.sampled_from(sorted(_SEED_BYTES)))])
    mutation = draw(st.sampled_from(["flip", "truncate", "header-only", "tail", "magic", "splice", "none"]))
    if mutation == "flip":
        for _ in range(draw(st.integers(1, 16))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
    elif mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "header-only":
        data = data[: draw(st.integers(1, 64))]
    elif mutation == "tail":
        data = data[: draw(st.integers(1, len(data)))] + draw(st.binary(min_size=1, max_size=2_048))
    elif mutation == "magic":
        data[: draw(st.integers(1, 8))] = draw(st.binary(min_size=8, max_size=8))[: len(data[:8])]
    elif mutation == "splice":
        other = _SEED_BYTES[draw(st.sampled_from(sorted(_SEED_BYTES)))]
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def any_image_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated_images(), st.binary(max_size=4_096))


# Any code point, lone surrogates and control characters included.
ANY_CHARACTER = st.characters(codec=None, categories=None)
any_text = st.one_of(st.text(ANY_CHARACTER, max_size=300), st.text(ANY_CHARACTER, min_size=300, max_size=3_000))
