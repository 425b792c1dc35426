"""The request as a server receives it: wire fields decoded and checked into a `Product`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from catalogvlm.pipeline.contract import TEXT_FIELDS, Product

from .errors import InvalidInput
from .images import check_image
from .limits import Limits, cut_at_word


@dataclass(frozen=True)
class CheckedProduct:
    product: Product
    truncated_fields: tuple[str, ...]  # cut to the prompt's budget


def product_from_raw(raw: Mapping[str, bytes | str | None], image: bytes | None, limits: Limits) -> CheckedProduct:
    """Decode and check the wire fields (UTF-8, lengths, a non-empty title, a readable image), and cut the
    long ones to what the prompt reads."""
    texts = {name: decode_text(name, raw.get(name), limits.text_limit(name)) for name in TEXT_FIELDS}
    truncated = []
    for name, text in texts.items():
        budget = limits.prompt_limit(name)
        if budget is not None and len(text) > budget:
            texts[name] = cut_at_word(text, budget)
            truncated.append(name)
    if not texts["title"]:
        raise InvalidInput("title", "is empty; every product needs a title")
    if image is not None:
        if not image:  # a broken download or an empty upload: the caller must learn it, not get a text-only answer
            raise InvalidInput("image", "is empty")
        check_image(image, limits)
    return CheckedProduct(Product(**texts, image=image), tuple(truncated))


def decode_text(name: str, value: bytes | str | None, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(name, f"is not valid UTF-8 (byte {error.start})") from error
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(name, f"is {len(text):,} characters long; the limit is {limit:,}")
    if "\x00" in text:
        raise InvalidInput(name, "contains a NUL character")
    return text
