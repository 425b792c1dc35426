"""Decoding untrusted product images safely, and what a CPU can honestly see in them.

Guards: byte size, pixel count read from the header *before* decoding (decompression bombs), formats
other than those Shopify accepts (JPEG, PNG, GIF, WebP; a GIF is read as its first frame), corrupt and
truncated files. Pillow's decoders raise many kinds of errors on hostile bytes; every one of them is the
caller's bad input (INVALID_ARGUMENT naming the image), never a server error. Normalised: EXIF orientation,
CMYK, palette, alpha (composited on white) and 16-bit images all come out as 8-bit RGB. A semaphore bounds how many
decoded images are held at once, so concurrency cannot multiply peak memory without limit.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput
from .limits import Limits

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP"})
ACCEPTED = "JPEG, PNG, GIF or WebP"
MAX_IMAGES_IN_FLIGHT = 4
_in_flight = threading.BoundedSemaphore(MAX_IMAGES_IN_FLIGHT)

# Names are the taxonomy's Color values, so a colour seen here can be validated against the Color list.
NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "Black": (20, 20, 20),
    "White": (245, 245, 245),
    "Gray": (128, 128, 128),
    "Silver": (192, 192, 196),
    "Red": (200, 30, 30),
    "Pink": (240, 150, 180),
    "Orange": (245, 140, 30),
    "Yellow": (240, 220, 40),
    "Gold": (212, 175, 55),
    "Beige": (225, 205, 170),
    "Brown": (120, 75, 40),
    "Green": (40, 150, 60),
    "Blue": (40, 90, 210),
    "Navy": (20, 30, 90),
    "Purple": (120, 50, 160),
}
_PALETTE_NAMES = list(NAMED_COLORS)
_PALETTE = np.array(list(NAMED_COLORS.values()), dtype=np.float32)


@dataclass(frozen=True)
class ImageSummary:
    """What the CPU engine reports about an image: facts, not guesses."""

    width: int
    height: int
    format: str
    dominant_colors: tuple[str, ...]

    def describe(self) -> str:
        colors = ", ".join(c.lower() for c in self.dominant_colors) or "no single dominant colour"
        return f"A {self.width}×{self.height} {self.format} image; dominant colours: {colors}."


@contextmanager
def decoded_rgb(data: bytes, limits: Limits) -> Iterator[Image.Image]:
    """The image as 8-bit RGB, held under the in-flight bound for the duration of the block."""
    with _in_flight:
        yield decode_rgb(data, limits)


def check_image(data: bytes, limits: Limits) -> None:
    """Raise InvalidInput unless the image decodes completely within the limits."""
    with decoded_rgb(data, limits):
        pass


def decode_rgb(data: bytes, limits: Limits) -> Image.Image:
    if not data:
        raise InvalidInput("image", "is empty")
    if len(data) > limits.max_image_bytes:
        raise InvalidInput("image", f"is {len(data):,} bytes; the limit is {limits.max_image_bytes:,}")
    image = _open_checked(data, limits)
    try:
        image.load()  # a GIF's first frame
        return _to_rgb(ImageOps.exif_transpose(image))
    except MemoryError:
        raise
    except Exception as error:  # any decoder failure on the caller's bytes
        raise InvalidInput("image", f"is truncated or corrupt ({type(error).__name__}: {error})") from error


def _open_checked(data: bytes, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:  # its message names only Pillow's file object
        raise InvalidInput("image", f"is not a readable {ACCEPTED} file") from error
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InvalidInput("image", f"is not a readable {ACCEPTED} file ({error})") from error
    except MemoryError:
        raise
    except Exception as error:  # Pillow reads headers in open(): a valid magic number with garbage after it
        raise InvalidInput("image", f"is truncated or corrupt ({type(error).__name__}: {error})") from error
    if image.format not in ALLOWED_FORMATS:
        raise InvalidInput("image", f"format {image.format} is not accepted; send {ACCEPTED}")
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise InvalidInput(
            "image", f"is {width}×{height} = {width * height:,} pixels; the limit is {limits.max_image_pixels:,}"
        )
    if width == 0 or height == 0:
        raise InvalidInput("image", "has no pixels")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float32)
        scale = 255.0 / max(float(wide.max()), 1.0) if image.mode == "I" else 255.0 / 65535.0
        image = Image.fromarray(np.clip(np.rint(wide * scale), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def summarize(image: Image.Image, source_format: str = "image", max_colors: int = 3) -> ImageSummary:
    """Size and the named colours of the product: those covering at least 15% of the image's centre,
    leaving out the backdrop (the colour that dominates the border, as in studio product photos)."""
    thumbnail = image.copy()
    thumbnail.thumbnail((64, 64))
    names = _nearest_named(np.asarray(thumbnail, dtype=np.float32))
    border = np.concatenate([names[0], names[-1], names[:, 0], names[:, -1]])
    backdrop = np.bincount(border, minlength=len(_PALETTE_NAMES)).argmax()
    h, w = names.shape
    centre = names[h // 5 : h - h // 5, w // 5 : w - w // 5].reshape(-1)
    shares = np.bincount(centre, minlength=len(_PALETTE_NAMES)) / max(len(centre), 1)
    if shares[backdrop] < 0.9:  # a backdrop colour that fills the centre is the product's own colour
        shares[backdrop] = 0.0
    order = np.argsort(-shares)
    colors = tuple(_PALETTE_NAMES[i] for i in order[:max_colors] if shares[i] >= 0.15)
    return ImageSummary(image.width, image.height, source_format, colors)


def _nearest_named(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the index of the nearest NAMED_COLORS entry."""
    return np.argmin(((rgb[..., None, :] - _PALETTE) ** 2).sum(axis=-1), axis=-1)


def image_format(data: bytes) -> str:
    try:
        return Image.open(io.BytesIO(data)).format or "image"
    except (UnidentifiedImageError, OSError):
        return "image"


def data_url(image: bytes) -> str:
    """`data:image/<format>;base64,...`: how both GPU routes hand an image to TensorRT-LLM (NVIDIA's Triton model
    and Dynamo's workers accept inline data URIs and refuse server-side paths)."""
    with Image.open(io.BytesIO(image)) as opened:
        mime = opened.get_format_mimetype() or "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def image_digest(image: bytes) -> bytes:
    """64 bits of BLAKE2b of the image's bytes: the image's identity wherever a KV cache must tell images apart."""
    return hashlib.blake2b(image, digest_size=8).digest()


def image_key(image: bytes) -> str:
    """The digest as text. Written in the prompt before the image's pad tokens, it makes two different images
    differ in the tokens KV-cache block reuse hashes (which see every image as the same pads: TensorRT-LLM issue
    #14125), while one image sent again still reuses its blocks."""
    return image_digest(image).hex()
