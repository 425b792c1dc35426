"""Stage 1 on the CPU: which taxonomy category a product belongs to.

Two views are combined: sentence-embedding similarity of the product to each category path (meaning:
"loafer" is a shoe) and a TF-IDF index over category names (exact words, any language's shared terms).
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

from .embeddings import SentenceEncoder

ANCESTOR_WEIGHT = 0.35
# How much each product field says about the category, relative to the title.
FIELD_WEIGHTS = {"title": 1.0, "product_type": 1.0, "tags": 0.5, "description": 0.25, "vendor": 0.1}
DESCRIPTION_WORDS = 80
# English product titles end their first segment with the head noun ("Organic Lavender Soy *Candle* - 8oz").
HEAD_NOUN_WEIGHT = 1.5
_TITLE_SEGMENT = re.compile(r"\s[-–|/,(]\s*|\s*[|,(]\s*")


class LexicalIndex:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self._categories: list[Category] = list(taxonomy)
        documents = [self._document(taxonomy, c) for c in self._categories]
        frequency: dict[str, int] = defaultdict(int)
        for document in documents:
            for word in document:
                frequency[word] += 1
        total = len(documents)
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
        head = tokens(_TITLE_SEGMENT.split(fields.get("title", ""), maxsplit=1)[0])
        if head:
            query[head[-1]] += HEAD_NOUN_WEIGHT
        return query


class CategoryClassifier:
    """Hybrid scores (embedding + lexical) over all categories, then abstention by tree mass."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        category_vectors: np.ndarray | None,
        encoder: SentenceEncoder | None = None,
        settings: ClassifierSettings | None = None,
    ) -> None:
        self._categories = list(taxonomy)
        self._lexical = LexicalIndex(taxonomy)
        self._vectors = category_vectors
        self._settings = settings or ClassifierSettings()
        self._encoder = encoder or SentenceEncoder()
        self._tree = _Tree(taxonomy)
        if category_vectors is not None:
            self._encoder.encode(["warm-up"])  # load the model now, not on the first user's request

    def classify(self, fields: Mapping[str, str]) -> tuple[Category, float]:
        """The category, and the share of probability mass under it (a confidence in [0, 1])."""
        return self.classify_many([fields])[0]

    def classify_many(self, products: Sequence[Mapping[str, str]]) -> list[tuple[Category, float]]:
        """`classify` for a batch: the texts of all products are embedded in one pass."""
        answers = []
        for scores in self.scores_many(products):
            row, mass = self._tree.descend(scores, self._settings.temperature, self._settings.descend_share)
            answers.append((self._categories[row], mass))
        return answers

    def scores_many(self, products: Sequence[Mapping[str, str]]) -> list[np.ndarray]:
        lexical = [self._lexical.scores(fields) for fields in products]
        if self._vectors is None:
            return lexical
        weight = self._settings.embedding_weight
        embedding = self._embedding_scores(products)
        return [weight * embedding[:, i] + (1.0 - weight) * lexical[i] for i in range(len(products))]

    def _embedding_scores(self, products: Sequence[Mapping[str, str]]) -> np.ndarray:
        """Similarity of each whole product to each category path (one column per product), blended, when the
        merchant gave a product type (often a category name in their words: "Silver necklace", "Floreros"),
        with the similarity of that type alone."""
        types = [fields.get("product_type", "") for fields in products]
        texts = [product_text(fields) for fields in products] + [t for t in types if t]
        similarities = np.asarray(self._vectors) @ self._encoder.encode(texts).T
        whole, by_type = similarities[:, : len(products)], similarities[:, len(products) :]
        share = self._settings.product_type_weight
        typed = np.flatnonzero([bool(t) for t in types])
        whole[:, typed] = (1.0 - share) * whole[:, typed] + share * by_type
        return whole


@dataclass(frozen=True)
class ClassifierSettings:
    embedding_weight: float = 0.7
    product_type_weight: float = 0.3  # of the embedding view, when a product type is given
    temperature: float = 0.02
    # Descend into the child holding at least this share of its parent's probability mass.
    descend_share: float = 0.5


def product_text(fields: Mapping[str, str]) -> str:
    parts = [fields.get("title", ""), fields.get("product_type", ""), fields.get("tags", "")[:100]]
    parts.append(fields.get("description", "")[:200])
    return ". ".join(p for p in parts if p)


class _Tree:
    """Categories' ancestor rows, for summing probability mass up the taxonomy in numpy."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        categories = list(taxonomy)
        row_of = {c.id: row for row, c in enumerate(categories)}
        depth = 1 + max(c.level for c in categories)
        self._lineage = np.full((len(categories), depth), -1, dtype=np.int64)
        self._children: dict[int, list[int]] = defaultdict(list)
        for row, category in enumerate(categories):
            chain = [row_of[a.id] for a in taxonomy.ancestors(category)] + [row]
            self._lineage[row, : len(chain)] = chain
            if category.parent_id:
                self._children[row_of[category.parent_id]].append(row)
        self._roots = [row for row, c in enumerate(categories) if c.level == 0]

    def descend(self, scores: np.ndarray, temperature: float, share: float) -> tuple[int, float]:
        probabilities = np.exp((scores - scores.max()) / temperature)
        probabilities /= probabilities.sum()
        mass = np.zeros(len(scores))
        for level in range(self._lineage.shape[1]):
            rows = self._lineage[:, level]
            present = rows >= 0
            mass += np.bincount(rows[present], weights=probabilities[present], minlength=len(scores))
        node = max(self._roots, key=mass.__getitem__)
        while self._children[node]:
            child = max(self._children[node], key=mass.__getitem__)
            if mass[child] < share * mass[node]:
                break
            node = child
        return node, float(mass[node])
