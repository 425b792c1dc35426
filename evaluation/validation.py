"""Leave-stores-out validation of the CPU engine on labelled products (`catalogvlm eval --leave-stores-out`).

Quality is judged on stores the engine has never seen, so every choice is made without the stores it is scored
on: the products are split into folds by store; for each fold the classifier's settings are chosen (by
hierarchical F1) and the confidence is calibrated (isotonic regression) on the other folds' stores, and the fold's
products then go through the real engine and chain in-process with those settings. The scores, the reliability
table and the attribute values reported are those of the held-out folds only. The settings and calibration to
ship are then chosen the same way on all stores.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold

from catalogvlm.pipeline.candidates import DEFAULT_TOP_K, BatchedCandidateSource
from catalogvlm.pipeline.chain import ChainSettings, Prediction, ProductUnderstandingChain
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.cpu.calibration import Calibration, EngineSettings
from catalogvlm.pipeline.cpu.categories import CategoryClassifier, ClassifierSettings
from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.pipeline.cpu.engine import CpuVlmEngine
from catalogvlm.pipeline.cpu.glossary import with_glosses
from catalogvlm.pipeline.cpu.retrieval import CategoryRetriever
from catalogvlm.pipeline.engines import BatchedVlmEngine
from catalogvlm.pipeline.limits import Limits
from catalogvlm.pipeline.product import product_from_raw
from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import Category, Taxonomy

from .labelled import LabelledProduct
from .metrics import RECALL_AT, is_right, largest_gap, reliability, score

FOLDS = 5
# The confidence temperatures tried, as multiples of the decision temperature.
CONFIDENCE_TEMPERATURE_FACTORS = (1, 2, 4)
# The settings validated: each view's weight, the product type's share, the softmax temperature, the glossary.
GRID = [
    EngineSettings(ClassifierSettings(embedding, product_type, temperature), glossary)
    for embedding, product_type, temperature, glossary in itertools.product(
        (0.6, 0.7, 0.85), (0.0, 0.3, 0.6), (0.02, 0.04, 0.08), (True, False)
    )
]


class SettingsGrid:
    """Every product's answer under every setting of GRID, from one embedding pass per glossary choice."""

    def __init__(
        self,
        classifier: CategoryClassifier,
        fields: Sequence[Mapping[str, str]],
        labels: Sequence[str],
        stores: Sequence[str],
    ) -> None:
        glossed = [with_glosses(f) for f in fields]
        with_glossary = classifier.views(glossed)
        views = {True: with_glossary, False: classifier.views_of_variants(with_glossary, glossed, fields)}
        self._classifier, self._views = classifier, views
        self._confidence_masses: dict[EngineSettings, np.ndarray] = {}  # at most len(GRID) x the factors tried
        self.labels, self.stores = list(labels), list(stores)
        self.answers = np.empty((len(GRID), len(fields)), dtype=object)
        self.masses = np.zeros((len(GRID), len(fields)))
        for row, setting in enumerate(GRID):
            for column, (category, mass) in enumerate(classifier.decide(views[setting.glossary], setting.classifier)):
                self.answers[row, column], self.masses[row, column] = category.short_id, mass

    def best(self, rows: np.ndarray) -> int:
        """The setting (index into GRID) with the highest hierarchical F1 on these products."""
        labelled = [r for r in rows if self.labels[r]]
        return max(range(len(GRID)), key=lambda s: score((self.answers[s, r], self.labels[r]) for r in labelled).hF1)

    def candidates(self, setting: EngineSettings, rows: np.ndarray, top_k: int) -> list[list[tuple[Category, float]]]:
        """These products' retrieval candidates under `setting`, with its calibrated confidences (as the
        category_candidates model ranks them), from the views already computed."""
        return CategoryRetriever(self._classifier, setting).ranked_in(self._views[setting.glossary].take(rows), top_k)

    def confidence_masses(self, setting: EngineSettings) -> np.ndarray:
        """Every product's raw mass under its answer at `setting`'s confidence temperature (computed once per
        setting: each fold's choice and the final one look at the same few)."""
        if setting not in self._confidence_masses:
            found = self._classifier.candidates(self._views[setting.glossary], setting.classifier, 1)
            self._confidence_masses[setting] = np.array([answer[0][1] for answer in found])
        return self._confidence_masses[setting]

    def calibration(self, setting: int, rows: np.ndarray, masses: np.ndarray) -> Calibration:
        """Isotonic map from the raw tree mass to the share of right answers, fitted on these products."""
        labelled, right = self._right(setting, rows)
        isotonic = _isotonic().fit(masses[labelled], right)
        return Calibration(tuple(isotonic.X_thresholds_), tuple(isotonic.y_thresholds_))

    def cross_fitted_gap(self, setting: int, rows: np.ndarray, masses: np.ndarray) -> float:
        """The largest per-bin calibration gap of these masses on these products' stores (the target is ±0.1 per
        bin), each fold of stores calibrated on the others'."""
        labelled, right = self._right(setting, rows)
        groups = [self.stores[r] for r in labelled]
        confidence = np.zeros(len(labelled))
        for fit, check in GroupKFold(n_splits=min(FOLDS, len(set(groups)))).split(labelled, groups=groups):
            isotonic = _isotonic().fit(masses[[labelled[i] for i in fit]], right[fit])
            confidence[check] = isotonic.predict(masses[[labelled[i] for i in check]])
        return largest_gap(reliability(confidence, right))

    def _right(self, setting: int, rows: np.ndarray) -> tuple[list[int], np.ndarray]:
        labelled = [r for r in rows if self.labels[r]]
        return labelled, np.array([is_right(self.answers[setting, r], self.labels[r]) for r in labelled])


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")


@dataclass(frozen=True)
class Fold:
    stores: int
    products: int
    setting: EngineSettings


@dataclass(frozen=True)
class Validation:
    """Held-out results, in input order: every product's prediction through the served chain and its retrieval
    candidates (the most RECALL_AT asks for); each fold's stores and settings; the settings chosen on all."""

    predictions: list[Prediction]
    candidates: list[list[tuple[Category, float]]]
    folds: list[Fold]
    chosen: EngineSettings


def leave_stores_out(
    taxonomy: Taxonomy,
    vectors: np.ndarray,
    products: Sequence[LabelledProduct],
    folds: int = FOLDS,
    fixed: EngineSettings | None = None,
) -> Validation:
    """With `fixed`, those settings are scored instead of choosing them per fold (their calibration is still
    fitted on the other folds' stores): how the shipped settings do on stores they were not fitted on."""
    served = _as_served(products)
    classifier = CategoryClassifier(taxonomy, vectors)
    stores = [p.store for p in products]
    grid = SettingsGrid(classifier, [p.text_fields() for p in served], [p.category for p in products], stores)
    predictions: list[Prediction | None] = [None] * len(products)
    candidates: list[list[tuple[Category, float]]] = [[] for _ in products]
    summary = []
    for train, held_out in GroupKFold(n_splits=folds).split(products, groups=stores):
        setting = _chosen(grid, train, fixed)
        for i, found in zip(held_out, grid.candidates(setting, held_out, max(RECALL_AT)), strict=True):
            candidates[i] = found
        retriever = CategoryRetriever(classifier, setting)
        engine = CpuVlmEngine(taxonomy, settings=setting, classifier=classifier)
        held_out_predictions = _predict(taxonomy, engine, retriever, [served[i] for i in held_out])
        for i, prediction in zip(held_out, held_out_predictions, strict=True):
            predictions[i] = prediction
        summary.append(Fold(len({stores[i] for i in held_out}), len(held_out), setting))
    chosen = _chosen(grid, np.arange(len(products)), fixed)
    return Validation(predictions, candidates, summary, chosen)  # type: ignore[arg-type]


def _chosen(grid: SettingsGrid, rows: np.ndarray, fixed: EngineSettings | None = None) -> EngineSettings:
    """The settings (the fixed ones, or those with the best hierarchical F1 on these products), their confidence
    temperature (the one whose calibration's largest bin gap across these products' stores is smallest) and
    calibration."""
    if fixed is None:
        best = grid.best(rows)
    else:
        best = GRID.index(EngineSettings(replace(fixed.classifier, confidence_temperature=None), fixed.glossary))
    setting = GRID[best]
    options = [
        replace(
            setting, classifier=replace(setting.classifier, confidence_temperature=setting.classifier.temperature * f)
        )
        for f in CONFIDENCE_TEMPERATURE_FACTORS
    ]
    scored = [(option, grid.confidence_masses(option)) for option in options]
    option, masses = min(scored, key=lambda pair: grid.cross_fitted_gap(best, rows, pair[1]))
    return replace(option, calibration=grid.calibration(best, rows, masses))


def category_vectors(taxonomy: Taxonomy, taxonomy_option: str | None = None) -> np.ndarray:
    """The served engine's category embeddings, built first when this machine has none (~100 s)."""
    cache = CategoryEmbeddingCache(taxonomy_dir(taxonomy_option), EMBEDDINGS_DIR)
    cache.build(taxonomy)  # does nothing when the cache is there
    return np.asarray(cache.load(taxonomy))


def _as_served(products: Sequence[LabelledProduct]) -> list[Product]:
    """The products as the server reads them: long fields cut to the prompt's budget."""
    limits = Limits()
    return [product_from_raw(p.product.text_fields(), None, limits).product for p in products]


def _predict(
    taxonomy: Taxonomy, engine: CpuVlmEngine, retriever: CategoryRetriever, products: Sequence[Product]
) -> list[Prediction]:
    """The products through the served chain, in-process: grounded prompts as the profiles' default."""

    async def run_all() -> list[Prediction]:
        chain = ProductUnderstandingChain(
            taxonomy,
            BatchedVlmEngine(engine, max_batch_size=64, max_delay_s=0.002),
            ChainSettings(candidates_top_k=DEFAULT_TOP_K),
            candidates=BatchedCandidateSource(retriever.find_batch, max_batch_size=64, max_delay_s=0.002),
        )
        return list(await asyncio.gather(*(chain.run(product) for product in products)))

    return asyncio.run(run_all())
