"""Bounds on one request; a deployment sets them in the model's config.pbtxt parameters.

Two kinds of bound. What a product may be is Shopify's own limits, so that a product Shopify accepts is
never refused: a title, vendor and product type of up to 255 characters, up to 250 tags of up to 255
characters each; descriptions have no documented limit, so theirs is what a request can reasonably carry.
What a prompt reads is the token budget (builders/budget.py: 1,024 product tokens): a longer description
or tag list is cut at a word boundary, and the result names the fields that were cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SHOPIFY_FIELD_CHARS = 255
SHOPIFY_MAX_TAGS = 250


@dataclass(frozen=True)
class Limits:
    max_title_chars: int = SHOPIFY_FIELD_CHARS
    max_short_field_chars: int = SHOPIFY_FIELD_CHARS  # vendor, product type
    max_tags_chars: int = SHOPIFY_MAX_TAGS * (SHOPIFY_FIELD_CHARS + 2)  # 250 tags of 255 characters, ", " between
    max_description_chars: int = 512 * 1024
    # What the prompt reads: ~4 characters a token, with the title, vendor and type within 1,024 product tokens.
    prompt_description_chars: int = 2_400
    prompt_tags_chars: int = 400
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000

    def text_limit(self, name: str) -> int:
        by_field = {
            "title": self.max_title_chars,
            "description": self.max_description_chars,
            "tags": self.max_tags_chars,
        }
        return by_field.get(name, self.max_short_field_chars)

    def prompt_limit(self, name: str) -> int | None:
        """How much of a field the prompt reads, or None when all of it fits."""
        return {"description": self.prompt_description_chars, "tags": self.prompt_tags_chars}.get(name)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> Limits:
        known = {k: int(v) for k, v in parameters.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def cut_at_word(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at the last word boundary before it (mid-word only when a single
    word is longer than the limit)."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    boundary = max((m.start() for m in re.finditer(r"\s", head)), default=0)
    return (head[:boundary] if boundary > 0 else head[:limit]).rstrip()
