"""Test images made on the spot: every awkward kind the image guards must handle."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def product_photo(color=(200, 30, 30), size=(400, 300), fmt="JPEG") -> bytes:
    """A coloured object on a light backdrop."""
    image = Image.new("RGB", size, (238, 238, 235))
    w, h = size
    image.paste(Image.new("RGB", (w // 2, h // 2), color), (w // 4, h // 4))
    return encoded(image, fmt)


def cmyk_jpeg() -> bytes:
    return encoded(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")


def rgba_png() -> bytes:
    image = Image.new("RGBA", (64, 48), (0, 0, 255, 255))
    image.putpixel((0, 0), (0, 0, 0, 0))
    return encoded(image, "PNG")


def sixteen_bit_png() -> bytes:
    return encoded(Image.fromarray(np.full((48, 64), 40_000, dtype=np.uint16)), "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored 64 wide × 32 high, with EXIF orientation 6 (display rotated 90°): shown 32 × 64."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.new("RGB", (64, 32), (0, 128, 0)), "JPEG", exif=exif)


def truncated_jpeg() -> bytes:
    whole = product_photo()
    return whole[: len(whole) // 2]


def decompression_bomb_png(side=8_000) -> bytes:
    """64 megapixels that compress to a few kilobytes."""
    return encoded(Image.new("1", (side, side)), "PNG", optimize=True)


def gif() -> bytes:
    return encoded(Image.new("RGB", (16, 16), (255, 0, 0)), "GIF")


def jpeg_header_then_noise() -> bytes:
    """A JPEG's first 100 bytes, then random bytes."""
    return product_photo()[:100] + random.Random(7).randbytes(4_000)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (24, 16), color) for color in ((200, 30, 30), (40, 90, 210), (40, 150, 60))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()
