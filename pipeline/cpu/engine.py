"""The CPU `vlm` engine: same prompt in, same JSON out, as the GPU's Qwen2-VL.

It reads the product (and, in stage 2, the attribute menu) from the tagged blocks of the prompt it is
given, and the image from the request, and answers from the taxonomy. Nothing is canned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from catalogvlm.taxonomy import Taxonomy, load_taxonomy

from .. import prompts
from ..errors import EngineError, ModelOutputError
from ..images import ImageSummary, decoded_rgb, image_format, summarize
from ..limits import Limits
from .attributes import mentioned_values
from .categories import CategoryClassifier
from .descriptions import simplify
from .embeddings import CategoryEmbeddingCache
from .glossary import with_glosses

SUMMARY_CACHE_SIZE = 256


class CpuVlmEngine:
    def __init__(
        self, taxonomy: Taxonomy, limits: Limits | None = None, category_vectors: np.ndarray | None = None
    ) -> None:
        """Without `category_vectors` (see embeddings.py) stage 1 uses the lexical view alone."""
        self._classifier = CategoryClassifier(taxonomy, category_vectors)
        self._limits = limits or Limits()
        self._summaries: dict[bytes, ImageSummary] = {}  # by digest: stage 2 reuses stage 1's look

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> CpuVlmEngine:
        """The engine from its model's config.pbtxt parameters; its category embeddings must have been built."""
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        cache = CategoryEmbeddingCache(Path(parameters["taxonomy_dir"]), Path(parameters["embeddings_dir"]))
        vectors = cache.load(taxonomy)
        if vectors is None:
            raise EngineError(
                f"no category embeddings for taxonomy {taxonomy.version} at {cache.path}; "
                "run `catalogvlm build-cache` (serve does it) before starting the server"
            )
        return cls(taxonomy, Limits.from_parameters(parameters), vectors)

    def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        try:
            fields = prompts.product_from_prompt(prompt)
        except (ModelOutputError, json.JSONDecodeError) as error:
            raise EngineError(f"the prompt carries no readable <product> block: {error}") from error
        summary = self._image_summary(image)
        if prompts.read_block(prompt, "attribute_menu") is not None:
            answer: dict[str, object] = self._attributes(prompt, fields, summary)
        else:
            answer = self._category(fields, summary)
        return _within(json.dumps(answer, ensure_ascii=False), max_tokens)

    def _category(self, fields: dict[str, str], summary: ImageSummary | None) -> dict[str, object]:
        category, _ = self._classifier.classify(with_glosses(fields))
        return {
            "category": category.full_name,
            "simplified_description": simplify(fields.get("title", ""), fields.get("description", "")),
            "image_description": summary.describe() if summary else "",
        }

    def _attributes(self, prompt: str, fields: dict[str, str], summary: ImageSummary | None) -> dict[str, object]:
        menu = prompts.read_json_block(prompt, "attribute_menu")
        colors = summary.dominant_colors if summary else ()
        return {"attributes": mentioned_values(menu, with_glosses(fields, descriptive=True), colors)}

    def _image_summary(self, image: bytes | None) -> ImageSummary | None:
        if not image:
            return None
        digest = hashlib.blake2b(image, digest_size=16).digest()
        summary = self._summaries.get(digest)
        if summary is None:
            with decoded_rgb(image, self._limits) as rgb:
                summary = self._summaries[digest] = summarize(rgb, image_format(image))
            if len(self._summaries) > SUMMARY_CACHE_SIZE:
                del self._summaries[next(iter(self._summaries))]
        return summary


def _within(text: str, max_tokens: int) -> str:
    """Generation is bounded by max_tokens like a real decoder (~4 characters a token): a budget too
    small yields a truncated answer, which the chain treats as a failed attempt."""
    return text[: max(max_tokens, 1) * 4]
