"""`catalogvlm search`: the products nearest a text query, by cosine over the text vectors `catalogvlm embed` wrote
(numpy: a dense matrix product is exact and, at catalog sizes that fit one machine's memory, fast enough; a vector
index library would add approximation and a build step for nothing at this size)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.product_embeddings import embedding_text

from .catalog_io import join
from .records import ANSWERED_OUTPUTS

COLUMNS = ["id", "title", "text_model", "text_vector"]


@dataclass(frozen=True)
class Index:
    ids: list[str]
    titles: list[str]
    vectors: np.ndarray  # float32 (products, dim), unit rows
    text_model: str


@dataclass(frozen=True)
class Match:
    id: str
    title: str
    score: float


def load_index(directory: str) -> Index:
    """Every answered record (embedded or carried over) of an `embed` run's folder, on any Beam filesystem."""
    tables = [
        pq.read_table(io.BytesIO(FileSystems.open(found.path).read()), columns=COLUMNS)
        for name in ANSWERED_OUTPUTS
        for found in FileSystems.match([join(directory, f"{name}*.parquet")])[0].metadata_list
    ]
    rows = [row for table in tables for row in table.to_pylist()]
    if not rows:
        raise ConfigurationError(f"--index {directory} holds no predictions*.parquet from `catalogvlm embed`")
    models = {row["text_model"] for row in rows}
    if len(models) != 1:
        raise ConfigurationError(f"--index {directory} mixes text models {sorted(models)}: re-embed into one folder")
    vectors = np.asarray([row["text_vector"] for row in rows], dtype=np.float32)
    return Index([row["id"] for row in rows], [row["title"] for row in rows], vectors, models.pop())


def nearest(index: Index, query: np.ndarray, top_k: int) -> list[Match]:
    scores = index.vectors @ query
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [Match(index.ids[i], index.titles[i], float(scores[i])) for i in order]


def query_vector(index: Index, text: str) -> np.ndarray:
    """The query as the server embeds a product whose title it is, with the index's own text model."""
    from catalogvlm.pipeline.cpu.product_encoders import text_encoder

    encoder, _ = text_encoder(index.text_model)
    return encoder.encode([embedding_text(Product(title=text))])[0]
