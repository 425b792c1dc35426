"""The two services as a server adapter sees them: decoded request fields in, response values out.

Triton's model.py files and the Dynamo worker both wrap these, so the request handling, the chain, the
validation rules and the back-pressure exist once. Settings come from a model's config.pbtxt `parameters`,
the one place a deployment sets them for either server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from catalogvlm.errors import ConfigurationError
from catalogvlm.taxonomy import CategoryCorrector, CorrectedCategory, TaxonomyInputError, load_taxonomy

from .admission import Admission, AdmissionObserver
from .candidates import CandidateRequest, CandidateSource, prompt_top_k
from .chain import ChainObserver, ChainSettings, NullObserver, ProductUnderstandingChain
from .engines import VlmEngine
from .errors import InvalidInput
from .limits import Limits
from .product import TEXT_FIELDS, product_from_raw
from .result_cache import ResultCache

MAX_CATEGORIES_PER_REQUEST = 1024
# product_understanding's grounding and cascade (chain.py), and the model that gives the candidates.
CANDIDATES_MODEL_PARAMETER = "candidates_model_name"
# The tensors the model in the `vlm` slot speaks (contract.VLM_PROTOCOLS): ours, or NVIDIA's LLM-API model's.
VLM_PROTOCOL_PARAMETER = "vlm_protocol"
CASCADE_THRESHOLD_PARAMETER = "cascade_threshold"
CASCADE_OFF = "off"


def cascade_threshold(value: str) -> float | None:
    """The config's `cascade_threshold`: "off", or a confidence in [0, 1]."""
    if value.strip().lower() == CASCADE_OFF:
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise ConfigurationError(f"{CASCADE_THRESHOLD_PARAMETER} must be '{CASCADE_OFF}' or in [0, 1], got {value!r}")
    return threshold


class ServiceObserver(ChainObserver, AdmissionObserver, Protocol):
    """What operators count of one service: the chain's stages, the admission's refusals, the result cache."""

    def result_cache_looked_up(self, hit: bool) -> None: ...


class ProductUnderstandingService:
    """Many products in flight at once on one event loop, each awaiting its two engine calls."""

    def __init__(
        self,
        parameters: Mapping[str, str],
        engine: VlmEngine,
        candidates: CandidateSource | None = None,
        observer: ServiceObserver | None = None,
    ) -> None:
        observer = observer or NullObserver()
        self.limits = Limits.from_parameters(parameters)
        timeout_ms = int(parameters["vlm_timeout_ms"])
        settings = ChainSettings(
            max_retries_per_stage=int(parameters["max_retries_per_stage"]),
            category_max_tokens=int(parameters["category_max_tokens"]),
            attribute_max_tokens=int(parameters["attribute_max_tokens"]),
            attempt_timeout_s=timeout_ms / 1000 if timeout_ms > 0 else None,
            candidates_top_k=prompt_top_k(parameters),
            cascade_threshold=cascade_threshold(parameters.get(CASCADE_THRESHOLD_PARAMETER, CASCADE_OFF)),
        )
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        _check_reported_release(parameters, taxonomy.version)
        self.chain = ProductUnderstandingChain(taxonomy, engine, settings, observer=observer, candidates=candidates)
        self.results = ResultCache(int(parameters.get("result_cache_mib", "0")) * 1024 * 1024)
        self._observer = observer
        self.admission = Admission(
            int(parameters["max_inflight"]), int(parameters["max_inflight_image_mib"]) * 1024 * 1024, observer
        )

    async def answer(self, raw: Mapping[str, bytes | None], image: bytes | None) -> str:
        """The `result` JSON for one product, or InvalidInput / StageFailed / Overloaded."""
        key = None
        if self.results.enabled:  # hashing an image of megabytes is CPU work: off the event loop
            key = ResultCache.key(raw, None) if image is None else await asyncio.to_thread(ResultCache.key, raw, image)
            cached = self.results.get(key)
            self._observer.result_cache_looked_up(hit=cached is not None)
            if cached is not None:
                return cached
        result = await self._predict(raw, image)
        if key is not None:
            self.results.put(key, result)
        return result

    async def _predict(self, raw: Mapping[str, bytes | None], image: bytes | None) -> str:
        with self.admission.admit(len(image or b"")):
            texts = {name: raw.get(name) for name in TEXT_FIELDS}
            if image is None:
                checked = product_from_raw(texts, image, self.limits)
            else:  # decoding the image to check it is the request's heaviest CPU step: off the event loop
                checked = await asyncio.to_thread(product_from_raw, texts, image, self.limits)
            prediction = await self.chain.run(checked.product)
        result = {**prediction.to_dict(), "truncated_fields": list(checked.truncated_fields)}
        return json.dumps(result, ensure_ascii=False)


def _check_reported_release(parameters: Mapping[str, str], loaded: str) -> None:
    """The model config reports `taxonomy_release` to callers (bulk fingerprints): it must be what was loaded."""
    reported = parameters.get("taxonomy_release", loaded)
    if reported != loaded:
        raise ConfigurationError(f"taxonomy_release is {reported!r} but {parameters['taxonomy_dir']} holds {loaded!r}")


class CandidateRequests:
    """category_candidates' requests decoded and checked as product_understanding's are (the Triton model and the
    Dynamo worker share this)."""

    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.limits = Limits.from_parameters(parameters)
        self.default_top_k = int(parameters["default_top_k"])

    def decode(self, raw: Mapping[str, bytes | None], top_k: int) -> CandidateRequest:
        """The request's product, checked and cut as the prompt reads it, and its `top_k` (each adapter passes
        `default_top_k` for a request that sends none)."""
        return CandidateRequest(product_from_raw(raw, None, self.limits).product.text_fields(), top_k)


class TaxonomyValidationService:
    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.corrector = CategoryCorrector(load_taxonomy(parameters["taxonomy_dir"]))

    def answer(self, queries: Sequence[bytes | str]) -> list[str]:
        """One JSON {id, full_name, score, corrected} per path or id."""
        if not 1 <= len(queries) <= MAX_CATEGORIES_PER_REQUEST:
            raise InvalidInput("category", f"holds {len(queries)} elements; send 1 to {MAX_CATEGORIES_PER_REQUEST}")
        return [json.dumps(self._correct(index, query).to_dict()) for index, query in enumerate(queries)]

    def _correct(self, index: int, query: bytes | str) -> CorrectedCategory:
        try:
            return self.corrector.correct(query)
        except TaxonomyInputError as error:
            raise InvalidInput(f"category[{index}]", str(error)) from error
