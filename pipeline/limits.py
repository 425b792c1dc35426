"""Bounds on one request; a deployment sets them in the model's config.pbtxt parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_title_chars: int = 1_000
    max_description_chars: int = 20_000
    max_short_field_chars: int = 1_000
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000

    def text_limit(self, name: str) -> int:
        return {"title": self.max_title_chars, "description": self.max_description_chars}.get(
            name, self.max_short_field_chars
        )

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> Limits:
        known = {k: int(v) for k, v in parameters.items() if k in cls.__dataclass_fields__}
        return cls(**known)
