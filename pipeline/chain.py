"""The two-stage product-understanding chain, shared by the Triton BLS model and the Dynamo worker.

Stage 1 asks the VLM for a category path (+ descriptions), which is corrected to a valid taxonomy
category; retrieval's candidates may ground its prompt, and answer it instead when retrieval is sure enough
(the cost cascade, candidates.py). Stage 2 puts *that* category's attribute menu in the prompt and asks for
values, which are validated against the controlled lists. Each stage is retried on its own (a failed stage 2 does not
redo stage 1); the request fails as a whole when a stage exhausts its retries.

The chain is asynchronous: one process carries many products at once, each awaiting its engine calls, so a
GPU engine's in-flight batching sees them together. Taxonomy work (correction, value validation) runs on a
worker thread so that it never stalls the other products' awaits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from catalogvlm.errors import ConfigurationError
from catalogvlm.taxonomy import CategoryCorrector, CorrectedCategory, Taxonomy
from catalogvlm.taxonomy.values import AttributeValidator, ValidatedAttributes

from . import prompts
from .candidates import RETRIEVAL_SOURCE, VLM_SOURCE, Candidate, CandidateSource, CategoryCandidates
from .engines import VlmEngine
from .errors import EngineError, ModelOutputError, StageFailed
from .parsing import parse_json_object
from .product import Product

CATEGORY_STAGE = "category"
ATTRIBUTE_STAGE = "attributes"

T = TypeVar("T")


class ChainObserver(Protocol):
    """Where the chain reports what operators count (Triton metrics, logs, tests)."""

    def stage_finished(self, stage: str, seconds: float) -> None: ...
    def stage_retried(self, stage: str) -> None: ...
    def stage_failed(self, stage: str) -> None: ...
    def category_corrected(self) -> None: ...
    def category_routed(self, source: str) -> None: ...
    def values_dropped(self, count: int) -> None: ...


class NullObserver:
    """Observes nothing: every event of the chain, the admission and the result cache."""

    def stage_finished(self, stage: str, seconds: float) -> None:
        pass

    def stage_retried(self, stage: str) -> None:
        pass

    def stage_failed(self, stage: str) -> None:
        pass

    def category_corrected(self) -> None:
        pass

    def category_routed(self, source: str) -> None:
        pass

    def values_dropped(self, count: int) -> None:
        pass

    def inflight_changed(self, count: int) -> None:
        pass

    def result_cache_looked_up(self, hit: bool) -> None:
        pass

    def request_refused(self, reason: str) -> None:
        pass


@dataclass(frozen=True)
class ChainSettings:
    max_retries_per_stage: int = 2
    category_max_tokens: int = 256
    attribute_max_tokens: int = 512
    attempt_timeout_s: float | None = None  # a stage attempt that takes longer fails (and is retried)
    candidates_top_k: int = 0  # retrieval's candidates in the stage-1 prompt (0: an ungrounded prompt)
    # The cost cascade: stage 1 is answered by retrieval when its first candidate's confidence is at least this
    # (None: the VLM answers every product).
    cascade_threshold: float | None = None

    @property
    def candidates_wanted(self) -> int:
        """How many candidates stage 1 asks retrieval for: the prompt's, or the cascade's one."""
        return max(self.candidates_top_k, 0 if self.cascade_threshold is None else 1)


@dataclass(frozen=True)
class CategoryAnswer:
    category: CorrectedCategory
    model_output: str
    simplified_description: str
    image_description: str
    confidence: float | None = None  # the engine's, when it gives one: the chance the category (or coarser) is right
    source: str = VLM_SOURCE  # who answered: the VLM, or retrieval (the cost cascade)


@dataclass(frozen=True)
class Prediction:
    category: CategoryAnswer
    attributes: ValidatedAttributes
    retries: int

    def to_dict(self) -> dict[str, object]:
        validated = self.attributes.to_dict()
        return {
            "category": {
                **self.category.category.to_dict(),
                "confidence": self.category.confidence,
                "source": self.category.source,
                "model_output": self.category.model_output,
            },
            "simplified_description": self.category.simplified_description,
            "image_description": self.category.image_description,
            "attributes": validated["attributes"],
            "dropped_values": validated["dropped_values"],
            "mapped_values": validated["mapped_values"],
            "retries": self.retries,
        }


class ProductUnderstandingChain:
    def __init__(
        self,
        taxonomy: Taxonomy,
        engine: VlmEngine,
        settings: ChainSettings | None = None,
        observer: ChainObserver | None = None,
        corrector: CategoryCorrector | None = None,
        candidates: CandidateSource | None = None,
    ) -> None:
        self._taxonomy = taxonomy
        self._engine = engine
        self._settings = settings or ChainSettings()
        if self._settings.candidates_wanted and candidates is None:
            raise ConfigurationError("grounded prompts and the cost cascade need a category_candidates source")
        self._candidates = candidates
        self._observer = observer or NullObserver()
        self._corrector = corrector or CategoryCorrector(taxonomy)
        self._validator = AttributeValidator()

    async def run(self, product: Product) -> Prediction:
        category, category_retries = await self._stage(CATEGORY_STAGE, lambda: self._categorize(product))
        self._observer.category_routed(category.source)
        attributes, attribute_retries = await self._stage(ATTRIBUTE_STAGE, lambda: self._attributes(product, category))
        return Prediction(category, attributes, category_retries + attribute_retries)

    async def _stage(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        attempts = 1 + self._settings.max_retries_per_stage
        for number in range(attempts):
            started = time.perf_counter()
            try:
                result = await self._within_deadline(stage, attempt())
            except (ModelOutputError, EngineError) as error:
                if number + 1 == attempts:
                    self._observer.stage_failed(stage)
                    raise StageFailed(stage, attempts, error) from error
                self._observer.stage_retried(stage)
                continue
            self._observer.stage_finished(stage, time.perf_counter() - started)
            return result, number
        raise AssertionError("unreachable")  # pragma: no cover

    async def _within_deadline(self, stage: str, attempt: Awaitable[T]) -> T:
        timeout = self._settings.attempt_timeout_s
        try:
            return await asyncio.wait_for(attempt, timeout)
        except TimeoutError as error:
            raise EngineError(f"{stage} attempt took longer than {timeout:g} s") from error

    async def _categorize(self, product: Product) -> CategoryAnswer:
        found = await self._find_candidates(product)
        threshold = self._settings.cascade_threshold
        if found.first is not None and threshold is not None and found.first.confidence >= threshold:
            return await self._from_retrieval(found)
        return await self._from_vlm(product, found.candidates[: self._settings.candidates_top_k])

    async def _find_candidates(self, product: Product) -> CategoryCandidates:
        wanted = self._settings.candidates_wanted
        if not wanted or self._candidates is None:
            return CategoryCandidates(())
        return await self._candidates.find(product, wanted)

    async def _from_retrieval(self, found: CategoryCandidates) -> CategoryAnswer:
        """Stage 1 without the VLM: retrieval's first candidate (a taxonomy path) and the CPU description step's
        simplified description; nothing looked at the image."""
        first = found.candidates[0]
        return CategoryAnswer(
            category=await asyncio.to_thread(self._corrector.correct, first.category),
            model_output=first.category,
            simplified_description=found.simplified_description,
            image_description="",
            confidence=first.confidence,
            source=RETRIEVAL_SOURCE,
        )

    async def _from_vlm(self, product: Product, candidates: Sequence[Candidate]) -> CategoryAnswer:
        output = await self._engine.generate(
            prompts.category_prompt(product, candidates), product.image, self._settings.category_max_tokens
        )
        parsed = parse_json_object(output, required=("category",))
        path = parsed["category"]
        if not isinstance(path, str) or not path.strip():
            raise ModelOutputError("model output has no category path")
        corrected = await asyncio.to_thread(self._corrector.correct, path)
        if corrected.corrected:
            self._observer.category_corrected()
        return CategoryAnswer(
            category=corrected,
            model_output=path,
            simplified_description=_text(parsed.get("simplified_description")),
            image_description=_text(parsed.get("image_description")) if product.image is not None else "",
            confidence=_probability(parsed.get("confidence")),
        )

    async def _attributes(self, product: Product, answer: CategoryAnswer) -> ValidatedAttributes:
        category = self._taxonomy.category(answer.category.id)
        if not category.attributes:
            return ValidatedAttributes()
        prompt = prompts.attribute_prompt(product, category.full_name, category.attributes)
        output = await self._engine.generate(prompt, product.image, self._settings.attribute_max_tokens)
        proposed = parse_json_object(output, required=("attributes",))["attributes"]
        if not isinstance(proposed, dict):
            raise ModelOutputError("model output 'attributes' is not an object")
        validated = await asyncio.to_thread(self._validator.validate, category, proposed)
        if validated.dropped:
            self._observer.values_dropped(len(validated.dropped))
        return validated


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _probability(value: object) -> float | None:
    """A confidence the model wrote, when it is a number in [0, 1]; anything else is no confidence."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        return None
    return float(value)
