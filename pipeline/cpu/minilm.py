"""all-MiniLM-L6-v2 sentence embeddings in numpy: the checkpoint's BERT encoder, mean pooling, L2 norm.

Why not sentence-transformers at serve time: importing it (torch, transformers, scikit-learn) takes ~8 s
and ~300 MB in every Triton instance, which alone breaks the CPU profile's 10 s startup. The forward
pass below reads the same safetensors weights and the same tokenizer.json (Rust `tokenizers`), and the
test suite checks it against sentence-transformers to 1e-5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

# BERT's exact GELU, x * Phi(x), computed in float32 a cache-sized block at a time: scipy's erf works in float64, one
# element at a time, and took 30% of the encoder's time. erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, so
# GELU is off by under 1e-6 and the vectors still match sentence-transformers' to 1e-5): for z = |x| / sqrt(2),
# 1 - erf(z) = t (a1 + t (a2 + ... + t a5)) exp(-z^2) with t = 1 / (1 + p z).
_ERF_P = np.float32(0.3275911)
_INV_SQRT2 = np.float32(1 / np.sqrt(2.0))
_ERF_A = np.array([1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592], dtype=np.float32)  # a5..a1
_GELU_BLOCK = 1 << 15


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU of a float32 array (x / 2 (1 + erf(x / sqrt 2)), as BERT's "gelu"), written over x when x is contiguous
    (the encoder's activations are: no copy)."""
    flat = x.reshape(-1)
    for start in range(0, flat.size, _GELU_BLOCK):
        _gelu_block(flat[start : start + _GELU_BLOCK])
    return flat.reshape(x.shape)


def _gelu_block(x: np.ndarray) -> None:
    # x / 2 (1 + sign(x) erf(|z|)) = max(x, 0) - |x| / 2 (1 - erf(|z|)): no sign to carry through.
    size = np.abs(x)
    z = size * _INV_SQRT2
    t = z * _ERF_P
    t += 1
    np.reciprocal(t, out=t)
    tail = t * _ERF_A[0]
    for coefficient in _ERF_A[1:]:
        tail += coefficient
        tail *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z  # 1 - erf(|z|)
    tail *= size
    tail *= 0.5
    np.maximum(x, 0, out=x)
    x -= tail


class MiniLM:
    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config["layer_norm_eps"])
        max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self._weights = load_file(str(model_dir / "model.safetensors"))
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=int(max_length))
        self._tokenizer.no_padding()  # batches are padded by encode(), grouped by length first
        self._pad_id = int(config.get("pad_token_id", 0))

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids (truncated to the model's window, unpadded)."""
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def encode(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Unit-length float32 vectors, one per token-id sequence; the batch is padded to its longest."""
        length = max(len(ids) for ids in batch)
        ids = np.full((len(batch), length), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)], mask[row, : len(sequence)] = sequence, 1.0
        hidden = self._embed(ids)
        additive_mask = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for layer in range(self._layers):
            hidden = self._layer(hidden, additive_mask, f"encoder.layer.{layer}.")
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        w = self._weights
        positions = np.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        return self._norm(x, "embeddings.LayerNorm.")

    def _layer(self, x: np.ndarray, additive_mask: np.ndarray, prefix: str) -> np.ndarray:
        batch, length, width = x.shape
        head_width = width // self._heads

        def heads(name: str) -> np.ndarray:
            projected = self._linear(x, f"{prefix}attention.self.{name}.")
            return projected.reshape(batch, length, self._heads, head_width).transpose(0, 2, 1, 3)

        scores = heads("query") @ heads("key").transpose(0, 1, 3, 2) / np.sqrt(head_width) + additive_mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = scores / scores.sum(axis=-1, keepdims=True)
        context = (attention @ heads("value")).transpose(0, 2, 1, 3).reshape(batch, length, width)
        x = self._norm(
            x + self._linear(context, f"{prefix}attention.output.dense."), f"{prefix}attention.output.LayerNorm."
        )
        inner = self._linear(x, f"{prefix}intermediate.dense.")
        inner = gelu(inner)
        return self._norm(x + self._linear(inner, f"{prefix}output.dense."), f"{prefix}output.LayerNorm.")

    def _linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        """One GEMM over all tokens of the batch (a 3-D matmul would loop over small ones)."""
        weight = self._weights[prefix + "weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight.T + self._weights[prefix + "bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[0])

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normalized = (x - mean) / np.sqrt(variance + self._eps)
        return normalized * self._weights[prefix + "weight"] + self._weights[prefix + "bias"]
