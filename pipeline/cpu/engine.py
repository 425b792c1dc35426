"""The CPU `vlm` engine: same prompt in, same JSON out, as the GPU's Qwen2-VL.

It reads the product (and, in stage 2, the attribute menu) from the tagged blocks of the prompt it is
given, and the image from the request, and answers from the taxonomy. Nothing is canned.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import cachetools

from catalogvlm.taxonomy import Category

from .. import prompts
from ..candidates import Candidate, prompt_top_k
from ..engines import BatchAnswers, GenerationRequest
from ..errors import EngineError, ModelOutputError, PipelineError
from ..images import ImageSummary, decoded_rgb, image_format, summarize
from ..limits import Limits
from .attributes import mentioned_values
from .calibration import EngineSettings
from .categories import CategoryClassifier
from .descriptions import simplify
from .glossary import with_glosses
from .retrieval import CategoryRetriever, classifier_from_parameters

SUMMARY_CACHE_SIZE = 256


class CpuVlmEngine:
    def __init__(
        self,
        classifier: CategoryClassifier | Callable[[], CategoryClassifier],
        limits: Limits | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        """`classifier` answers the category prompts that come without candidates; given as a function, it is
        built on the first such prompt (a grounded prompt carries its answer: behind a grounding chain this engine
        may never need one). `settings` default to those validation chose (calibration.py)."""
        self._settings = settings or EngineSettings.shipped()
        self._classifier = classifier
        self._retriever: CategoryRetriever | None = None
        self._retriever_lock = threading.Lock()
        self._limits = limits or Limits()
        # By digest, bounded, shared by the threads that run batches: stage 2 reuses stage 1's look.
        self._summaries: cachetools.LRUCache[bytes, ImageSummary] = cachetools.LRUCache(SUMMARY_CACHE_SIZE)
        self._summaries_lock = threading.Lock()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> CpuVlmEngine:
        """The engine from its model's config.pbtxt parameters; its category embeddings must have been built.
        Where the chain grounds its category prompts (`candidates_top_k` > 0), the classifier (taxonomy, category
        vectors, lexical index: ~85 MiB an instance; its encoders: ~2 s of torch import and weights) is built only
        if an ungrounded prompt comes."""
        limits = Limits.from_parameters(parameters)
        if prompt_top_k(parameters) > 0:
            return cls(partial(classifier_from_parameters, parameters), limits)
        return cls(classifier_from_parameters(parameters), limits)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> BatchAnswers:
        """Answers in request order. A grounded category prompt is answered with its first candidate (this
        engine's own retrieval found them); the other category prompts of the batch are classified in one
        embedding pass."""
        readings = [self._read(request) for request in requests]
        to_classify = [r.fields for r in readings if isinstance(r, _Reading) and r.menu is None and not r.candidates]
        categories = iter(self._category_retriever().answers(to_classify) if to_classify else ())
        return [self._answer(r, request.max_tokens, categories) for r, request in zip(readings, requests, strict=True)]

    def _category_retriever(self) -> CategoryRetriever:
        with self._retriever_lock:  # batches run on several threads; the classifier is built once
            if self._retriever is None:
                given = self._classifier
                classifier = given if isinstance(given, CategoryClassifier) else given()
                self._retriever = CategoryRetriever(classifier, self._settings)
            return self._retriever

    def _answer(
        self, reading: _Reading | PipelineError, max_tokens: int, categories: Iterator[tuple[Category, float]]
    ) -> str | PipelineError:
        if isinstance(reading, PipelineError):
            return reading
        if reading.menu is not None:
            text = self._attributes(reading)
        elif reading.candidates:
            first = reading.candidates[0]
            text = self._category(reading, first.category, first.confidence)
        else:
            category, confidence = next(categories)
            text = self._category(reading, category.full_name, confidence)
        return _within(text, max_tokens)

    def _read(self, request: GenerationRequest) -> _Reading | PipelineError:
        try:
            fields = prompts.product_from_prompt(request.prompt)
            menu = prompts.read_block(request.prompt, "attribute_menu")
            candidates = prompts.candidates_from_prompt(request.prompt)
            summary = self._image_summary(request.image)
            return _Reading(fields, summary, None if menu is None else json.loads(menu), candidates)
        except (ModelOutputError, json.JSONDecodeError) as error:
            return EngineError(f"the prompt carries no readable <product> block or menu: {error}")
        except PipelineError as error:  # an image the engine cannot decode
            return error

    @staticmethod
    def _category(reading: _Reading, path: str, confidence: float) -> str:
        fields = reading.fields
        return json.dumps(
            {
                "category": path,
                "confidence": round(confidence, 4),
                "simplified_description": simplify(fields.get("title", ""), fields.get("description", "")),
                "image_description": reading.summary.describe() if reading.summary else "",
            },
            ensure_ascii=False,
        )

    def _attributes(self, reading: _Reading) -> str:
        colors = reading.summary.dominant_colors if reading.summary else ()
        fields = with_glosses(reading.fields, descriptive=True)
        values = mentioned_values(reading.menu, fields, colors, self._settings.defaults())
        return json.dumps({"attributes": values}, ensure_ascii=False)

    def _image_summary(self, image: bytes | None) -> ImageSummary | None:
        if not image:
            return None
        digest = hashlib.blake2b(image, digest_size=16).digest()
        with self._summaries_lock:
            summary = self._summaries.get(digest)
        if summary is None:
            with decoded_rgb(image, self._limits) as rgb:
                summary = summarize(rgb, image_format(image))
            with self._summaries_lock:
                self._summaries[digest] = summary
        return summary


@dataclass(frozen=True)
class _Reading:
    """What the engine reads in one prompt: the product's fields, its image, and stage 2's attribute menu."""

    fields: Mapping[str, str]
    summary: ImageSummary | None
    menu: object | None  # None in a category prompt
    candidates: tuple[Candidate, ...] = ()  # a grounded category prompt's


def _within(text: str, max_tokens: int) -> str:
    """Generation is bounded by max_tokens like a real decoder (~4 characters a token): a budget too
    small yields a truncated answer, which the chain treats as a failed attempt."""
    return text[: max(max_tokens, 1) * 4]
