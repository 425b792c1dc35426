"""Mapping a model-written category path (or id) to the nearest valid taxonomy category.

Why not `process.extractOne(path, all_paths, scorer=WRatio)`: whole-path string similarity is
dominated by the shared vertical prefix ("Apparel & Accessories > ...") and is ~15 ms a query.
Instead, candidates come from an index of the words in category names (a few hundred at most),
and each candidate path is scored level by level, vectorised:

* leaf: how well the query's last level names the candidate's own name (the strongest signal);
* precision: how much of the candidate's path the query mentions (penalises unrelated branches);
* recall: how much of the query the candidate's path explains (penalises ignoring a level).
"""

from __future__ import annotations

import functools
import re

import numpy as np
from rapidfuzz import fuzz, process

from .index import Taxonomy
from .model import Category, CorrectedCategory, TaxonomyInputError
from .normalize import MAX_QUERY_CHARS, compact, segment_key, split_path

TOKEN_CACHE_SIZE = 65_536

# Words shoppers and models use where the taxonomy says something else (singular, normalised form).
RETAIL_SYNONYMS = {
    "bike": "bicycle",
    "tee": "t shirt",
    "cellphone": "mobile phone",
    "cell": "mobile",
    "couch": "sofa",
    "tv": "television",
    "rosary": "prayer bead",
    "trainer": "sneaker",
    "hoody": "hoodie",
    "sweatpant": "jogger",
    "trouser": "pant",
    "purse": "handbag",
    "moisturiser": "moisturizer",
    "colour": "color",
}
_SHORT_ID = re.compile(r"^[a-z]{2}(?:-\d+)*$")
_MAX_DEPTH = 8
_TOKEN_CUTOFF = 80.0
_LEAF_WEIGHT, _PRECISION_WEIGHT, _RECALL_WEIGHT = 0.5, 0.25, 0.25
_ANCESTOR_WEIGHT = 0.5
# When the query has an invented last level, its next-to-last level may name the right category.
_EXTRA_LEVEL_DISCOUNT = 0.6
_DEPTH_TIEBREAK = 0.002
_SAME_LETTERS_CUTOFF = 90.0
# Names kept after the cheap first pass; each may name several categories. 16 kept every answer that 40 did
# on the hand-built set at half the latency.
_SHORTLIST = 16


def validate_query(query: object) -> str:
    """The query as clean text, or a TaxonomyInputError saying what is wrong with it."""
    if isinstance(query, bytes | bytearray):
        try:
            query = bytes(query).decode("utf-8")
        except UnicodeDecodeError as error:
            raise TaxonomyInputError(f"category path is not valid UTF-8 (byte {error.start})") from error
    if not isinstance(query, str):
        raise TaxonomyInputError(f"category path must be text, got {type(query).__name__}")
    text = query.strip()
    if not text:
        raise TaxonomyInputError("category path is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise TaxonomyInputError(f"category path is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    return text


class CategoryCorrector:
    """Built once per taxonomy (~0.5 s); `correct` is then well under a millisecond."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = taxonomy
        self._categories: list[Category] = list(taxonomy)
        names: dict[str, int] = {}
        paths = np.full((len(self._categories), _MAX_DEPTH), -1, dtype=np.int32)
        for row, category in enumerate(self._categories):
            for level, name in enumerate(category.path):
                paths[row, level] = names.setdefault(segment_key(name), len(names))
        self._name_keys = list(names)
        self._name_compacts = [compact(k) for k in self._name_keys]
        self._name_word_counts = np.array([len(set(k.split())) for k in self._name_keys], dtype=np.float32)
        self._paths = paths
        self._depths = (paths >= 0).sum(axis=1)
        self._leaf_names = paths[np.arange(len(paths)), self._depths - 1]
        self._categories_named = _group_rows_by(self._leaf_names)
        self._names_with_token = _names_by_token(self._name_keys)
        self._vocabulary = sorted(self._names_with_token)
        self._names_by_compact = {c: i for i, c in enumerate(self._name_compacts)}
        self._verticals = frozenset(c.short_id for c in taxonomy.verticals)
        # Query words are clients' text: the cache of their nearest index words is bounded (and thread-safe).
        self._nearest_tokens_cached = functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._nearest_tokens)
        self._row_by_key_path = {
            tuple(self._name_keys[i] for i in paths[row, : self._depths[row]]): row for row in range(len(paths))
        }

    def correct(self, query: object) -> CorrectedCategory:
        text = validate_query(query)
        exact = self._taxonomy.by_full_name(text)
        if exact is not None:
            return CorrectedCategory(exact.id, exact.full_name, 100.0, corrected=False)
        by_id = self._correct_id(text)
        if by_id is not None:
            return by_id
        return self._correct_path(split_path(text))

    def _correct_id(self, text: str) -> CorrectedCategory | None:
        """Ids, including a mangled gid prefix or an unknown trailing level (answered by its nearest ancestor)."""
        tail = text.lower().rsplit("/", 1)[-1].strip()
        short_id = re.sub(r"[_ ]", "-", tail)
        if not _SHORT_ID.match(short_id) or short_id.split("-")[0] not in self._verticals:
            return None
        parts = short_id.split("-")
        for kept in range(len(parts), 0, -1):
            category = self._taxonomy.get("-".join(parts[:kept]))
            if category is not None:
                score = 100.0 * kept / len(parts)
                return CorrectedCategory(category.id, category.full_name, score, corrected=text != category.id)
        return None

    def _correct_path(self, levels: list[str]) -> CorrectedCategory:
        keys = [self._known_words(k) for k in (segment_key(level) for level in levels) if k][-_MAX_DEPTH:]
        if not keys:
            raise TaxonomyInputError("category path has no words to match")
        row = self._row_by_key_path.get(tuple(keys))
        if row is None:
            row, score = self._best_row(keys)
        else:
            score = 100.0
        category = self._categories[row]
        return CorrectedCategory(category.id, category.full_name, round(score, 2), corrected=True)

    def _best_row(self, keys: list[str]) -> tuple[int, float]:
        rows = np.concatenate([self._categories_named[n] for n in self._shortlist(keys)])
        candidate_paths = self._paths[rows]
        names = np.unique(candidate_paths[candidate_paths >= 0])
        similarity = self._similarity(keys, names)  # (len(keys), len(names)); names are sorted
        valid = candidate_paths >= 0
        columns = np.searchsorted(names, np.where(valid, candidate_paths, names[0]))
        # sims[c, level, q]: similarity of query level q to level `level` of candidate c.
        sims = np.where(valid[:, :, None], similarity.T[columns], 0.0)
        depths = self._depths[rows]
        leaf_sims = sims[np.arange(len(rows)), depths - 1]  # (C, Q)
        leaf = leaf_sims[:, -1]
        if len(keys) > 1:
            leaf = np.maximum(leaf, _EXTRA_LEVEL_DISCOUNT * leaf_sims[:, -2])
        # A candidate's ancestors should be named by the query's ancestors, not by its last level:
        # otherwise children of what the query named ("Yoga Mat Bags" for "Yoga Mats") score well.
        ancestor_sims = sims[:, :, :-1].max(axis=2) if len(keys) > 1 else np.zeros(valid.shape, np.float32)
        level_weights = np.where(valid, _ANCESTOR_WEIGHT, 0.0)
        level_weights[np.arange(len(rows)), depths - 1] = 0.0
        precision = ((ancestor_sims * level_weights).sum(axis=1) + leaf) / (level_weights.sum(axis=1) + 1.0)
        query_weights = np.full(len(keys), _ANCESTOR_WEIGHT)
        query_weights[-1] = 1.0
        recall = (sims.max(axis=1) * query_weights).sum(axis=1) / query_weights.sum()
        score = _LEAF_WEIGHT * leaf + _PRECISION_WEIGHT * precision + _RECALL_WEIGHT * recall
        score -= _DEPTH_TIEBREAK * np.abs(depths - len(keys))
        best = int(np.argmax(score))
        return int(rows[best]), float(np.clip(score[best], 0.0, 1.0) * 100.0)

    def _similarity(self, keys: list[str], names: np.ndarray) -> np.ndarray:
        """Level-to-name similarity in [0, 1]: cosine of their word sets, or 1-ish for the same letters
        spaced differently ('smartwatch' / 'smart watch'). Typos were mended before, so character-level
        similarity is not used across words: 'phone case' must not resemble 'phone card'."""
        squeezed = process.cdist(
            [compact(k) for k in keys],
            [self._name_compacts[i] for i in names],
            scorer=fuzz.ratio,
            dtype=np.float32,
            score_cutoff=_SAME_LETTERS_CUTOFF,
        )
        cosine = np.stack([self._cosine(key, names) for key in keys])
        return np.maximum(squeezed / 100.0, cosine)

    def _cosine(self, key: str, names: np.ndarray) -> np.ndarray:
        """Cosine of the key's word set with each of `names`' ('monitor' ~ 'computer monitor' = 0.71)."""
        words = set(key.split())
        shared = np.zeros(len(self._name_keys), dtype=np.float32)
        for word in words:
            having = self._names_with_token.get(word)
            if having is not None:
                shared[having] += 1.0
        return shared[names] / np.sqrt(len(words) * self._name_word_counts[names])

    def _shortlist(self, keys: list[str]) -> list[int]:
        """Names that could be the answer's own name: those sharing a word with the query's last two levels,
        ranked by cheap string similarity to them."""
        tail = keys[-2:]
        groups = []
        for key in tail:
            whole = self._names_by_compact.get(compact(key))
            if whole is not None:
                groups.append(np.array([whole]))
            groups.extend(self._names_with_token[word] for word in key.split() if word in self._names_with_token)
        if not groups:
            return [i for _, _, i in process.extract(keys[-1], self._name_keys, scorer=fuzz.WRatio, limit=_SHORTLIST)]
        pool = np.unique(np.concatenate(groups))
        similarity = self._similarity(tail, pool)
        if len(tail) > 1:
            similarity[0] *= _EXTRA_LEVEL_DISCOUNT
        best = np.argsort(-similarity.max(axis=0), kind="stable")[:_SHORTLIST]
        return pool[best].tolist()

    def _known_words(self, key: str) -> str:
        """A query level in the index's words: synonyms, typos mended, compounds split ('laptos' -> 'laptop')."""
        words = " ".join(RETAIL_SYNONYMS.get(token, token) for token in key.split())
        return " ".join(known for token in words.split() for known in (self._known_tokens(token) or (token,)))

    def _known_tokens(self, token: str) -> tuple[str, ...]:
        """The index's words for a query word: itself, a near spelling, or the parts of a compound."""
        if token in self._names_with_token:
            return (token,)
        return self._nearest_tokens_cached(token)

    def _nearest_tokens(self, token: str) -> tuple[str, ...]:
        for cut in (1, *range(3, len(token) - 2)):  # one-letter heads exist: "t shirt", "x ray", "u lock"
            head, tail = token[:cut], token[cut:]
            if head in self._names_with_token and tail in self._names_with_token:
                return head, tail
        near = process.extractOne(token, self._vocabulary, scorer=fuzz.ratio, score_cutoff=_TOKEN_CUTOFF)
        return (near[0],) if near else ()


def _group_rows_by(values: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(values, kind="stable")
    boundaries = np.flatnonzero(np.diff(values[order])) + 1
    return {int(values[group[0]]): group for group in np.split(order, boundaries)}


def _names_by_token(name_keys: list[str]) -> dict[str, np.ndarray]:
    index: dict[str, list[int]] = {}
    for name_index, key in enumerate(name_keys):
        for token in set(key.split()):
            index.setdefault(token, []).append(name_index)
    return {token: np.array(names, dtype=np.int64) for token, names in index.items()}
