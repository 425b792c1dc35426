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
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold

from catalogvlm.pipeline.chain import Prediction, ProductUnderstandingChain
from catalogvlm.pipeline.cpu.calibration import Calibration, EngineSettings
from catalogvlm.pipeline.cpu.categories import CategoryClassifier, ClassifierSettings
from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.pipeline.cpu.engine import CpuVlmEngine
from catalogvlm.pipeline.cpu.glossary import with_glosses
from catalogvlm.pipeline.engines import MicroBatcher
from catalogvlm.pipeline.limits import Limits
from catalogvlm.pipeline.product import product_from_raw
from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import Taxonomy

from .labelled import LabelledProduct
from .metrics import is_right, score

FOLDS = 5
# The settings validated: each view's weight, the product type's share, the softmax temperature, the glossary.
GRID = [
    EngineSettings(ClassifierSettings(embedding, product_type, temperature), glossary)
    for embedding, product_type, temperature, glossary in itertools.product(
        (0.6, 0.7, 0.85), (0.0, 0.3, 0.6), (0.02, 0.04, 0.08), (True, False)
    )
]


class SettingsGrid:
    """Every product's answer under every setting of GRID, from one embedding pass per glossary choice."""

    def __init__(self, classifier: CategoryClassifier, products: Sequence[LabelledProduct]) -> None:
        fields = [p.product.text_fields() for p in products]
        glossed = [with_glosses(f) for f in fields]
        with_glossary = classifier.views(glossed)
        views = {True: with_glossary, False: classifier.views_of_variants(with_glossary, glossed, fields)}
        self.labels = [p.category for p in products]
        self.answers = np.empty((len(GRID), len(products)), dtype=object)
        self.masses = np.zeros((len(GRID), len(products)))
        for row, setting in enumerate(GRID):
            for column, (category, mass) in enumerate(classifier.decide(views[setting.glossary], setting.classifier)):
                self.answers[row, column], self.masses[row, column] = category.short_id, mass

    def best(self, rows: np.ndarray) -> int:
        """The setting (index into GRID) with the highest hierarchical F1 on these products."""
        labelled = [r for r in rows if self.labels[r]]
        return max(range(len(GRID)), key=lambda s: score((self.answers[s, r], self.labels[r]) for r in labelled).hF1)

    def calibration(self, setting: int, rows: np.ndarray) -> Calibration:
        """Isotonic map from the raw tree mass to the share of right answers, fitted on these products."""
        labelled = [r for r in rows if self.labels[r]]
        right = [is_right(self.answers[setting, r], self.labels[r]) for r in labelled]
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            self.masses[setting, labelled], right
        )
        return Calibration(tuple(isotonic.X_thresholds_), tuple(isotonic.y_thresholds_))


@dataclass(frozen=True)
class FoldResult:
    stores: tuple[str, ...]
    setting: EngineSettings
    products: list[LabelledProduct]
    predictions: list[Prediction]


def leave_stores_out(
    taxonomy: Taxonomy, vectors: np.ndarray, products: Sequence[LabelledProduct], folds: int = FOLDS
) -> tuple[list[FoldResult], EngineSettings]:
    """Held-out predictions of every fold, and the settings (with calibration) chosen on all stores."""
    classifier = CategoryClassifier(taxonomy, vectors)
    grid = SettingsGrid(classifier, products)
    stores = [p.store for p in products]
    results = []
    for train, held_out in GroupKFold(n_splits=folds).split(products, groups=stores):
        setting = _chosen(grid, train)
        held = [products[i] for i in held_out]
        engine = CpuVlmEngine(taxonomy, category_vectors=vectors, settings=setting, classifier=classifier)
        results.append(
            FoldResult(tuple(sorted({p.store for p in held})), setting, held, _predict(taxonomy, engine, held))
        )
    return results, _chosen(grid, np.arange(len(products)))


def _chosen(grid: SettingsGrid, rows: np.ndarray) -> EngineSettings:
    best = grid.best(rows)
    return replace(GRID[best], calibration=grid.calibration(best, rows))


def category_vectors(taxonomy: Taxonomy, taxonomy_option: str | None = None) -> np.ndarray:
    """The served engine's category embeddings, built first when this machine has none (~100 s)."""
    cache = CategoryEmbeddingCache(taxonomy_dir(taxonomy_option), EMBEDDINGS_DIR)
    vectors = cache.load(taxonomy)
    if vectors is None:
        cache.build(taxonomy)
        vectors = cache.load(taxonomy)
    return np.asarray(vectors)


def _predict(taxonomy: Taxonomy, engine: CpuVlmEngine, products: Sequence[LabelledProduct]) -> list[Prediction]:
    """The products through the served chain, in-process, read as the server reads them (long fields cut to
    the prompt's budget)."""
    limits = Limits()

    async def run_all() -> list[Prediction]:
        chain = ProductUnderstandingChain(taxonomy, MicroBatcher(engine, max_batch_size=64, max_delay_s=0.002))
        checked = [product_from_raw(p.product.text_fields(), None, limits).product for p in products]
        return list(await asyncio.gather(*(chain.run(product) for product in checked)))

    return asyncio.run(run_all())
