"""What the GPU models need from a Qwen2-VL checkpoint, read from its config.json (no weights).

Every size-dependent number (vocabulary size, hidden size, heads, mRoPE sections, special-token ids) comes from
the checkpoint: NVIDIA's reference models hard-code the 7B vocabulary, which breaks the 2B and 72B checkpoints.
Both the original layout (text fields at the top level) and the transformers 5 layout (`text_config`) are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from catalogvlm.errors import ConfigurationError


class CheckpointError(ConfigurationError, ValueError):
    """The checkpoint folder lacks a file or a field the GPU profile needs."""


@dataclass(frozen=True)
class VisionConfig:
    embed_dim: int
    num_heads: int
    depth: int
    mlp_ratio: float
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class Qwen2VLCheckpoint:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    mrope_section: tuple[int, ...]
    tie_word_embeddings: bool
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    eos_token_id: int
    vision: VisionConfig

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dir(cls, hf_dir: str | Path) -> Qwen2VLCheckpoint:
        path = Path(hf_dir) / "config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise CheckpointError(f"{path} not found: pass the Hugging Face Qwen2-VL checkpoint folder") from error
        return cls.from_config(config, where=str(path))

    @classmethod
    def from_config(cls, config: dict, where: str = "config.json") -> Qwen2VLCheckpoint:
        if config.get("model_type") not in {"qwen2_vl", None}:
            raise CheckpointError(f"{where}: model_type is {config.get('model_type')!r}, expected 'qwen2_vl'")
        text = {**config, **config.get("text_config", {})}
        rope = text.get("rope_scaling") or text.get("rope_parameters") or {}
        vision = config.get("vision_config", {})

        def field(source: dict, name: str, section: str = "") -> object:
            if name not in source:
                raise CheckpointError(f"{where}: no {section}{name}")
            return source[name]

        eos = field(text, "eos_token_id")
        return cls(
            vocab_size=int(field(text, "vocab_size")),
            hidden_size=int(field(text, "hidden_size")),
            intermediate_size=int(field(text, "intermediate_size")),
            num_hidden_layers=int(field(text, "num_hidden_layers")),
            num_attention_heads=int(field(text, "num_attention_heads")),
            num_key_value_heads=int(field(text, "num_key_value_heads")),
            max_position_embeddings=int(field(text, "max_position_embeddings")),
            rope_theta=float(text.get("rope_theta") or field(rope, "rope_theta", "rope_parameters.")),
            mrope_section=tuple(int(n) for n in field(rope, "mrope_section", "rope_scaling.")),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            image_token_id=int(field(config, "image_token_id")),
            video_token_id=int(field(config, "video_token_id")),
            vision_start_token_id=int(field(config, "vision_start_token_id")),
            vision_end_token_id=int(field(config, "vision_end_token_id")),
            eos_token_id=int(eos[0] if isinstance(eos, list) else eos),
            vision=VisionConfig(
                embed_dim=int(field(vision, "embed_dim", "vision_config.")),
                num_heads=int(field(vision, "num_heads", "vision_config.")),
                depth=int(field(vision, "depth", "vision_config.")),
                mlp_ratio=float(vision.get("mlp_ratio", 4)),
                patch_size=int(field(vision, "patch_size", "vision_config.")),
                temporal_patch_size=int(field(vision, "temporal_patch_size", "vision_config.")),
                spatial_merge_size=int(field(vision, "spatial_merge_size", "vision_config.")),
            ),
        )
