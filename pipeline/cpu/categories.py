"""Stage 1 on the CPU: the taxonomy category whose name and ancestry best match the product's words.

A TF-IDF index over category names (own name at full weight, ancestors' names lower), as an inverted
index in numpy: a query touches only the categories sharing a word with it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
from catalogvlm.taxonomy import Category, Taxonomy
from catalogvlm.taxonomy.normalize import tokens

ANCESTOR_WEIGHT = 0.35
# How much each product field says about the category, relative to the title.
FIELD_WEIGHTS = {"title": 1.0, "product_type": 1.0, "tags": 0.5, "description": 0.25, "vendor": 0.1}
DESCRIPTION_WORDS = 80
# English product titles end their first segment with the head noun ("Organic Lavender Soy *Candle* - 8oz").
HEAD_NOUN_WEIGHT = 1.5
_TITLE_SEGMENT = re.compile(r"\s[-–|/,(]\s*|\s*[|,(]\s*")


class CategoryIndex:
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

    def best(self, fields: Mapping[str, str]) -> tuple[Category, float]:
        """The best-matching category and its cosine score (0 when no word is shared)."""
        query = self._query(fields)
        scores = np.zeros(len(self._categories))
        norm = 0.0
        for word, weight in query.items():
            posting = self._postings.get(word)
            if posting is None:
                continue
            value = weight * self._idf[word]
            norm += value * value
            scores[posting[0]] += value * posting[1]
        if norm == 0.0:
            return self._fallback(), 0.0
        best = int(np.argmax(scores))
        return self._categories[best], float(scores[best] / math.sqrt(norm))

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

    def _fallback(self) -> Category:
        return next(c for c in self._categories if c.name == "Uncategorized" and c.level == 0)
