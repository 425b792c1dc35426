"""Category candidates: what retrieval says of a product before stage 1, in every profile.

The `category_candidates` step (the CPU engine's retrieval: sentence embeddings + a lexical index over the
taxonomy, its confidence calibrated on held-out stores) gives the top-K taxonomy paths. The chain puts them in the
stage-1 prompt (a grounded prompt: the VLM sees real paths), and, when the first is sure enough, answers stage 1
from it without the VLM (the cost cascade). The first candidate is retrieval's own answer (it may be a coarser
category when the evidence is split); the others follow by their own score, each with the calibrated confidence
that the product lies in or under it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from .contract import Product
from .engines import MicroBatcher
from .errors import EngineError, PipelineError

RETRIEVAL_SOURCE = "retrieval"
VLM_SOURCE = "vlm"
# Candidates in the stage-1 prompt, chosen by candidate recall@K on leave-stores-out validation (README,
# "Grounded prompts and the cost cascade"); the profiles' `candidates_top_k` default.
DEFAULT_TOP_K = 20
TOP_K_PARAMETER = "candidates_top_k"


def prompt_top_k(parameters: Mapping[str, str]) -> int:
    """The candidates a model config puts in the stage-1 prompt (0, or absent: an ungrounded prompt)."""
    return int(parameters.get(TOP_K_PARAMETER, "0"))


@dataclass(frozen=True)
class Candidate:
    category: str  # a full taxonomy path
    confidence: float

    @classmethod
    def listed(cls, entries: object) -> tuple[Candidate, ...]:
        """Candidates from their JSON form, a list of {"category", "confidence"}; ValueError when it is not that."""
        if not isinstance(entries, list):
            raise ValueError("candidates are not a JSON list")
        try:
            return tuple(cls(str(entry["category"]), float(entry["confidence"])) for entry in entries)
        except (TypeError, KeyError) as error:
            raise ValueError(f"a candidate is not a {{category, confidence}} object: {error!r}") from error


@dataclass(frozen=True)
class CategoryCandidates:
    candidates: tuple[Candidate, ...]
    simplified_description: str = ""  # the CPU description step's, for a product the cascade answers

    @property
    def first(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_json(self) -> str:
        return json.dumps(
            {"candidates": [asdict(c) for c in self.candidates], "simplified_description": self.simplified_description},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> CategoryCandidates:
        try:
            data = json.loads(text)
            return cls(Candidate.listed(data["candidates"]), str(data.get("simplified_description", "")))
        except (ValueError, TypeError, KeyError) as error:
            raise EngineError(f"unreadable category candidates: {error}") from error


@dataclass(frozen=True)
class CandidateRequest:
    """What the `category_candidates` model is asked, decoded."""

    fields: Mapping[str, str]  # the product's text fields, as the prompt reads them
    top_k: int


class CandidateSource(Protocol):
    """The retrieval step as the chain awaits it; never blocks the event loop (a BLS call, a micro-batcher)."""

    async def find(self, product: Product, top_k: int) -> CategoryCandidates: ...


class BatchedCandidateSource:
    """A `CandidateSource` over a batch retriever in this process (the Dynamo worker, evaluation): a
    `MicroBatcher` configured as the category_candidates model's Triton config would batch it."""

    def __init__(
        self,
        find_batch: Callable[[Sequence[CandidateRequest]], Sequence[CategoryCandidates | PipelineError]],
        max_batch_size: int,
        max_delay_s: float,
        instances: int = 1,
    ) -> None:
        self._batcher: MicroBatcher[CandidateRequest, CategoryCandidates] = MicroBatcher(
            find_batch, max_batch_size, max_delay_s, instances
        )

    async def find(self, product: Product, top_k: int) -> CategoryCandidates:
        return await self._batcher.submit(CandidateRequest(product.text_fields(), top_k))
