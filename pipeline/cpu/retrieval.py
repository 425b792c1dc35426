"""The `category_candidates` step: the CPU classifier's top-K categories for a batch of products, calibrated.

It runs in every profile, on the CPU beside whichever engine fills the `vlm` slot: its candidates ground the
stage-1 prompt, and its first candidate answers stage 1 when the cost cascade trusts it. The CPU engine's own
stage-1 answer is the same first candidate (engine.py), so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from catalogvlm.taxonomy import Category, load_taxonomy

from ..candidates import Candidate, CandidateRequest, CategoryCandidates
from ..errors import EngineError, InvalidInput, PipelineError
from .calibration import EngineSettings
from .categories import CategoryClassifier, CategoryViews
from .descriptions import simplify
from .embeddings import load_category_vectors
from .glossary import with_glosses

# Enough for any prompt (the chosen K is far below) while bounding a caller's request.
MAX_TOP_K = 100


class CategoryRetriever:
    def __init__(self, classifier: CategoryClassifier, settings: EngineSettings | None = None) -> None:
        self._classifier = classifier
        self._settings = settings or EngineSettings.shipped()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> CategoryRetriever:
        return cls(classifier_from_parameters(parameters))

    def answers(self, products: Sequence[Mapping[str, str]]) -> list[tuple[Category, float]]:
        """Each product's category and calibrated confidence, the batch embedded in one pass."""
        return [found[0] for found in self.ranked(products, 1)]

    def find_batch(self, requests: Sequence[CandidateRequest]) -> list[CategoryCandidates | PipelineError]:
        """Each request's candidates, in order; a request asking for an impossible K gets its own error."""
        allowed = [1 <= r.top_k <= MAX_TOP_K for r in requests]
        valid = [r for r, ok in zip(requests, allowed, strict=True) if ok]
        ranked = iter(self.ranked([r.fields for r in valid], max((r.top_k for r in valid), default=1)))
        return [
            self._candidates(r, next(ranked)) if ok else _bad_top_k(r.top_k)
            for r, ok in zip(requests, allowed, strict=True)
        ]

    def ranked(self, products: Sequence[Mapping[str, str]], top_k: int) -> list[list[tuple[Category, float]]]:
        """Each product's `top_k` candidate categories with their calibrated confidences, its answer first."""
        glossary = self._settings.glossary
        return self.ranked_in(self._classifier.views([with_glosses(f) if glossary else f for f in products]), top_k)

    def ranked_in(self, views: CategoryViews, top_k: int) -> list[list[tuple[Category, float]]]:
        """`ranked` from views already computed (glossed or not, as these settings read products)."""
        settings = self._settings
        return [
            [(category, settings.calibration.confidence(mass, category.level)) for category, mass in found]
            for found in self._classifier.candidates(views, settings.classifier, top_k)
        ]

    @staticmethod
    def _candidates(request: CandidateRequest, ranked: list[tuple[Category, float]]) -> CategoryCandidates:
        fields = request.fields
        return CategoryCandidates(
            tuple(Candidate(category.full_name, confidence) for category, confidence in ranked[: request.top_k]),
            simplify(fields.get("title", ""), fields.get("description", "")),
        )


def _bad_top_k(top_k: int) -> InvalidInput:
    return InvalidInput("top_k", f"is {top_k}; ask for 1 to {MAX_TOP_K} candidates")


def classifier_from_parameters(parameters: Mapping[str, str]) -> CategoryClassifier:
    """The classifier over a model config's `taxonomy_dir`, with the category embeddings `build-cache` made."""
    taxonomy = load_taxonomy(parameters["taxonomy_dir"])
    vectors = load_category_vectors(Path(parameters["taxonomy_dir"]), Path(parameters["embeddings_dir"]), taxonomy)
    if vectors is None:
        raise EngineError(
            f"no category embeddings for taxonomy {taxonomy.version} in {parameters['embeddings_dir']}; "
            "run `catalogvlm build-cache` (serve does it) before starting the server"
        )
    return CategoryClassifier(taxonomy, vectors)
