"""Stage 1 on the CPU: which taxonomy category a product belongs to.

Views are combined: the sentence-embedding similarity of the product to each category path by three encoders
(meaning: "loafer" is a shoe; MiniLM for English, USE for 16 languages, multilingual-e5-small for ~100 where it is
installed) and a TF-IDF index over category names (exact words, any language's shared terms).
The answer abstains to a coarser category when the evidence is split: probability mass is summed up
the tree and the descent stops where no child holds most of its parent's mass.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from catalogvlm.taxonomy import Category, Taxonomy
from catalogvlm.taxonomy.normalize import tokens

from ..product_embeddings import Encoder
from .embeddings import E5_MODEL, MODEL_NAME, SENTENCE_MODELS, USE_MODEL

ANCESTOR_WEIGHT = 0.35
# How much each product field says about the category, relative to the title.
FIELD_WEIGHTS = {"title": 1.0, "product_type": 1.0, "tags": 0.5, "description": 0.25, "vendor": 0.1}
DESCRIPTION_WORDS = 80
# English product titles end their first segment with the head noun ("Organic Lavender Soy *Candle* - 8oz").
HEAD_NOUN_WEIGHT = 1.5
# Added to the weighed score of each category whose name ends in the head noun of the title or of the product type
# ("Soy *Candle*" -> "Candles", not "Candle & Oil Warmers"): it settles near ties between categories the encoders
# find alike. Stage 1 alone, leave-stores-out: hF1 within 0.002 of none at 0.01-0.02, lower from 0.04 (README).
HEAD_MATCH_BONUS = 0.02
_TITLE_SEGMENT = re.compile(r"\s[-–|/,(]\s*|\s*[|,(]\s*")


def head_noun(text: str) -> str | None:
    """The last word of a title's first segment (or of a product type), singular: English product names end in the
    thing they are."""
    words = tokens(_TITLE_SEGMENT.split(text, maxsplit=1)[0])
    return words[-1] if words else None


class LexicalIndex:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self._categories: list[Category] = list(taxonomy)
        documents = [self._document(taxonomy, c) for c in self._categories]
        frequency: dict[str, int] = defaultdict(int)
        for document in documents:
            for word in document:
                frequency[word] += 1
        total = len(documents)
        self._named_by: dict[str, list[int]] = defaultdict(list)  # head noun -> the categories whose name ends in it
        for row, category in enumerate(self._categories):
            self._named_by[tokens(category.name)[-1]].append(row)
        self._idf = {word: math.log(1 + total / count) for word, count in frequency.items()}
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        norms = np.zeros(total, dtype=np.float64)
        for row, document in enumerate(documents):
            for word, weight in document.items():
                value = weight * self._idf[word]
                postings[word].append((row, value))
                norms[row] += value * value
        norms = np.sqrt(norms)
        self._postings = {
            word: (np.array([r for r, _ in pairs]), np.array([v for _, v in pairs]) / norms[[r for r, _ in pairs]])
            for word, pairs in postings.items()
        }

    @staticmethod
    def _document(taxonomy: Taxonomy, category: Category) -> dict[str, float]:
        words: dict[str, float] = {}
        for ancestor in taxonomy.ancestors(category):
            for word in tokens(ancestor.name):
                words[word] = max(words.get(word, 0.0), ANCESTOR_WEIGHT)
        for word in tokens(category.name):
            words[word] = 1.0
        return words

    def scores(self, fields: Mapping[str, str]) -> np.ndarray:
        """Cosine of the product's words with every category's, in taxonomy order (0 when none shared)."""
        scores = np.zeros(len(self._categories))
        norm = 0.0
        for word, weight in self._query(fields).items():
            posting = self._postings.get(word)
            if posting is None:
                continue
            value = weight * self._idf[word]
            norm += value * value
            scores[posting[0]] += value * posting[1]
        return scores / math.sqrt(norm) if norm else scores

    def _query(self, fields: Mapping[str, str]) -> dict[str, float]:
        query: dict[str, float] = defaultdict(float)
        for name, weight in FIELD_WEIGHTS.items():
            words = tokens(fields.get(name, ""))
            if name == "description":
                words = words[:DESCRIPTION_WORDS]
            for word in words:
                query[word] += weight
        head = head_noun(fields.get("title", ""))
        if head:
            query[head] += HEAD_NOUN_WEIGHT
        return query

    def head_matches(self, fields: Mapping[str, str]) -> np.ndarray:
        """1 for each category whose name ends in the head noun of the product's title or product type, else 0."""
        matches = np.zeros(len(self._categories), dtype=np.float32)
        for head in {head_noun(fields.get("title", "")), head_noun(fields.get("product_type", ""))} - {None}:
            matches[self._named_by.get(head, [])] = 1.0
        return matches


class CategoryClassifier:
    """Hybrid scores (embeddings + lexical) over all categories, then abstention by tree mass."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        category_vectors: Mapping[str, np.ndarray] | None,
        encoders: Mapping[str, Encoder] | None = None,
        settings: ClassifierSettings | None = None,
    ) -> None:
        """`category_vectors`: {sentence model (embeddings.SENTENCE_MODELS): its category vectors}; None for the
        lexical view alone. `encoders` default to those models' own, loaded now, not on the first user's request."""
        self.taxonomy = taxonomy
        self._categories = list(taxonomy)
        self._lexical = LexicalIndex(taxonomy)
        self._vectors = dict(category_vectors or {})
        self._settings = settings or ClassifierSettings()
        with_e5 = E5_MODEL in self._vectors
        self._encoders = {
            m: (encoders or {}).get(m) or SENTENCE_MODELS[m].classifier_encoder(with_e5) for m in self._vectors
        }
        self._tree = _Tree(taxonomy)
        for encoder in self._encoders.values():
            encoder.encode(["warm-up"])

    def classify(self, fields: Mapping[str, str]) -> tuple[Category, float]:
        """The category, and the share of probability mass under it (a raw confidence in [0, 1])."""
        return self.classify_many([fields])[0]

    def classify_many(self, products: Sequence[Mapping[str, str]]) -> list[tuple[Category, float]]:
        """`classify` for a batch: the texts of all products are embedded in one pass."""
        return self.decide(self.views(products), self._settings)

    def decide(self, views: CategoryViews, settings: ClassifierSettings) -> list[tuple[Category, float]]:
        """Each product's category and raw confidence under these settings."""
        return [found[0] for found in self.candidates(views, settings, 1)]

    def candidates(
        self, views: CategoryViews, settings: ClassifierSettings, top_k: int
    ) -> list[list[tuple[Category, float]]]:
        """Each product's `top_k` candidate categories with the raw mass under each (at the confidence
        temperature): its answer first (where the descent stops), then the categories it scores highest on their
        own, leaving out the answer's ancestors (the answer already implies them)."""
        if not len(views.lexical):
            return []
        # The head-noun bonus settles near ties; the confidence is read from the views' own evidence, as the bonus
        # makes an answer no surer (stage 1 alone, leave-stores-out: expected calibration error 0.038 with it, 0.018
        # without).
        evidence = views.scores(settings)
        probabilities, masses = self._tree.masses(evidence + HEAD_MATCH_BONUS * views.heads, settings.temperature)
        _, confidence_masses = self._tree.masses(evidence, settings.confidence_temperature or settings.temperature)
        found = []
        for row_probabilities, row_masses, row_confidence in zip(probabilities, masses, confidence_masses, strict=True):
            answer = self._tree.descend(row_masses, settings.descend_share)
            rows = [answer, *self._tree.best_others(row_probabilities, answer, top_k - 1)]
            found.append([(self._categories[row], float(row_confidence[row])) for row in rows])
        return found

    def views(self, products: Sequence[Mapping[str, str]]) -> CategoryViews:
        """What each view says of every category, before the settings weigh them (one pass per encoder)."""
        if not products:
            empty = np.empty((0, len(self._categories)))
            return CategoryViews(empty, np.empty(0, dtype=bool), {}, empty)
        lexical = np.stack([self._lexical.scores(f) for f in products])
        heads = np.stack([self._lexical.head_matches(f) for f in products])
        types = [fields.get("product_type", "") for fields in products]
        typed = np.array([bool(t) for t in types], dtype=bool)
        texts = [product_text(fields) for fields in products]
        typed_texts = [t for t in types if t]
        embedded = {}
        for model, vectors in self._vectors.items():
            reads_type = SENTENCE_MODELS[model].reads_type
            cosines = self._encoders[model].encode(texts + typed_texts if reads_type else texts) @ np.asarray(vectors).T
            similarities = (cosines * SENTENCE_MODELS[model].spread).astype(np.float32)
            whole = similarities[: len(products)]
            by_type = whole.copy()  # a model that does not read the type alone: its whole view in the type's share
            if reads_type:
                by_type[~typed] = 0.0
                by_type[typed] = similarities[len(products) :]
            embedded[model] = EmbeddedView(whole, by_type)
        return CategoryViews(lexical, typed, embedded, heads)

    def views_of_variants(
        self, base: CategoryViews, products: Sequence[Mapping[str, str]], variants: Sequence[Mapping[str, str]]
    ) -> CategoryViews:
        """The views of `variants` (the same products, some rewritten), given `base` = the views of `products`:
        only the rows that differ are computed again."""
        changed = [i for i, (p, v) in enumerate(zip(products, variants, strict=True)) if p != v]
        fresh = self.views([variants[i] for i in changed])
        return base.replaced(changed, fresh)


@dataclass(frozen=True)
class EmbeddedView:
    """One encoder's similarities (products x categories): of the whole product and, where the merchant gave a product
    type (often a category name in their words: "Silver necklace", "Floreros"), of that type alone (0 where none)."""

    whole: np.ndarray
    by_type: np.ndarray

    def take(self, rows: list[int]) -> EmbeddedView:
        return EmbeddedView(self.whole[rows], self.by_type[rows])

    def replaced(self, rows: list[int], other: EmbeddedView) -> EmbeddedView:
        whole, by_type = self.whole.copy(), self.by_type.copy()
        whole[rows], by_type[rows] = other.whole, other.by_type
        return EmbeddedView(whole, by_type)


@dataclass(frozen=True)
class CategoryViews:
    """Per product (rows) and category (columns): the lexical cosine and each encoder's embedded view; `typed` marks
    the products with a product type; `heads` the categories named by the product's head noun (1, else 0)."""

    lexical: np.ndarray
    typed: np.ndarray
    embedded: Mapping[str, EmbeddedView]
    heads: np.ndarray

    def take(self, rows: Sequence[int]) -> CategoryViews:
        """The views of these products only."""
        rows = list(rows)
        embedded = {m: v.take(rows) for m, v in self.embedded.items()}
        return CategoryViews(self.lexical[rows], self.typed[rows], embedded, self.heads[rows])

    def replaced(self, rows: Sequence[int], other: CategoryViews) -> CategoryViews:
        """These views with `rows` taken from `other` (its rows in the same order)."""
        rows = list(rows)
        if not rows:
            return self
        lexical, typed, heads = self.lexical.copy(), self.typed.copy(), self.heads.copy()
        lexical[rows], typed[rows], heads[rows] = other.lexical, other.typed, other.heads
        embedded = {m: v.replaced(rows, other.embedded[m]) for m, v in self.embedded.items()}
        return CategoryViews(lexical, typed, embedded, heads)

    def scores(self, settings: ClassifierSettings) -> np.ndarray:
        """The views weighed by the settings: one row of category scores per product."""
        weights = {m: w for m, w in settings.encoder_weights().items() if m in self.embedded}
        if not weights:
            return self.lexical
        share = np.where(self.typed, settings.product_type_weight, 0.0)[:, np.newaxis]
        total = sum(weights.values())
        embedding = sum(
            (w / total) * ((1.0 - share) * self.embedded[m].whole + share * self.embedded[m].by_type)
            for m, w in weights.items()
        )
        return settings.embedding_weight * embedding + (1.0 - settings.embedding_weight) * self.lexical


@dataclass(frozen=True)
class ClassifierSettings:
    embedding_weight: float = 0.7
    product_type_weight: float = 0.3  # of the embedding view, when a product type is given
    temperature: float = 0.02
    # Descend into the child holding at least this share of its parent's probability mass.
    descend_share: float = 0.5
    # The softmax temperature of the mass the confidence is calibrated from (None: `temperature`). The answer's
    # mass at a sharp decision temperature is near 1 for sure and unsure answers alike; a softer one ranks them.
    confidence_temperature: float | None = None
    # The multilingual encoder's share of the embedding view (MiniLM has the rest).
    multilingual_weight: float = 0.0
    # multilingual-e5-small's share of the embedding view (MiniLM and USE share the rest as above); where e5 is not
    # installed (embeddings.py), MiniLM and USE have it all.
    e5_weight: float = 0.0

    def encoder_weights(self) -> dict[str, float]:
        rest = 1.0 - self.e5_weight
        return {
            MODEL_NAME: rest * (1.0 - self.multilingual_weight),
            USE_MODEL: rest * self.multilingual_weight,
            E5_MODEL: self.e5_weight,
        }


def product_text(fields: Mapping[str, str]) -> str:
    parts = [fields.get("title", ""), fields.get("product_type", ""), fields.get("tags", "")[:100]]
    parts.append(fields.get("description", "")[:200])
    return ". ".join(p for p in parts if p)


class _Tree:
    """Which categories lie under which (a sparse matrix), for summing probability mass up the taxonomy."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        from scipy import sparse  # the `cpu` extra's, like the encoder: a base install imports this module too

        categories = list(taxonomy)
        row_of = {c.id: row for row, c in enumerate(categories)}
        under, above = [], []
        self._children: dict[int, list[int]] = defaultdict(list)
        self._lineage: list[list[int]] = []  # each category's ancestors and itself
        for row, category in enumerate(categories):
            self._lineage.append([row_of[a.id] for a in taxonomy.ancestors(category)] + [row])
            for ancestor in self._lineage[row]:
                above.append(ancestor)
                under.append(row)
            if category.parent_id:
                self._children[row_of[category.parent_id]].append(row)
        # subtree[a, c] = 1 when category c is a or lies under it
        self._subtree = sparse.csr_matrix((np.ones(len(under)), (above, under)), shape=(len(categories),) * 2)
        self._roots = [row for row, c in enumerate(categories) if c.level == 0]

    def masses(self, scores: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """For each row of scores (one product's, over all categories): each category's own softmax probability,
        and the probability mass under it (itself and its descendants)."""
        probabilities = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities, np.asarray(self._subtree @ probabilities.T).T

    def descend(self, mass: np.ndarray, share: float) -> int:
        """From the heaviest root down, into the child holding at least `share` of its parent's mass."""
        node = max(self._roots, key=mass.__getitem__)
        while self._children[node]:
            child = max(self._children[node], key=mass.__getitem__)
            if mass[child] < share * mass[node]:
                break
            node = child
        return node

    def best_others(self, probabilities: np.ndarray, answer: int, count: int) -> list[int]:
        """The `count` most probable categories other than `answer` and its ancestors, most probable first."""
        if count <= 0:
            return []
        excluded = set(self._lineage[answer])
        wanted = min(count + len(excluded), len(probabilities))
        top = np.argpartition(-probabilities, wanted - 1)[:wanted]
        ordered = top[np.argsort(-probabilities[top], kind="stable")]
        return [int(row) for row in ordered if int(row) not in excluded][:count]
