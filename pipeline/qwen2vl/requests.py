"""The GPU `vlm` ensemble's per-request work, without Triton or a GPU: what `preprocess` hands on, and what
`multimodal_encoders` feeds the vision engine and the language model. The model.py files only move tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput
from ..limits import Limits
from .checkpoint import Qwen2VLCheckpoint
from .preprocess import Qwen2VLImageSettings, preprocess_image
from .rope import Grid, mrope_cos_sin, mrope_position_ids, vision_attention_mask, vision_rotary_angles
from .tokens import Qwen2VLPromptEncoder, prompt_table_key


@dataclass(frozen=True)
class EngineLimits:
    """What the engines were built for (`build-engines` derives these from the token budget)."""

    max_input_len: int
    max_seq_len: int


@dataclass(frozen=True)
class PreparedRequest:
    input_ids: np.ndarray  # int32 (tokens,)
    vision_input_ids: np.ndarray  # int32 (tokens,)
    prompt_table_extra_ids: np.ndarray  # uint64 (tokens,)
    request_output_len: int
    pixel_values: np.ndarray  # float16 (patches, 1176); zero rows without an image
    image_grid_thw: np.ndarray  # int64 (images, 3)

    @property
    def input_length(self) -> int:
        return int(self.input_ids.size)


class Qwen2VLRequestPreparer:
    """`preprocess`: prompt + optional image bytes + max_tokens -> ids, pixels and grids, within engine limits."""

    def __init__(
        self,
        encoder: Qwen2VLPromptEncoder,
        engine: EngineLimits,
        image_settings: Qwen2VLImageSettings,
        limits: Limits,
    ) -> None:
        self._encoder = encoder
        self._engine = engine
        self._image_settings = image_settings
        self._limits = limits
        self._patch_width = 3 * image_settings.temporal_patch_size * image_settings.patch_size**2
        self.end_id = encoder.checkpoint.eos_token_id

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> Qwen2VLRequestPreparer:
        """From the `preprocess` model's config.pbtxt parameters."""
        checkpoint = Qwen2VLCheckpoint.from_dir(parameters["hf_model_dir"])
        return cls(
            Qwen2VLPromptEncoder.from_dirs(parameters["tokenizer_dir"], checkpoint),
            EngineLimits(int(parameters["max_input_len"]), int(parameters["max_seq_len"])),
            Qwen2VLImageSettings(max_pixels=int(parameters["max_pixels"])),
            Limits.from_parameters(parameters),
        )

    def prepare(self, prompt: str, image: bytes | None, max_tokens: int) -> PreparedRequest:
        if max_tokens < 1:
            raise InvalidInput("max_tokens", f"must be at least 1, got {max_tokens}")
        if image:
            patches = preprocess_image(image, self._limits, self._image_settings)
            pixels, grids, keys = patches.pixel_values.astype(np.float16), [patches.grid_thw], [prompt_table_key(image)]
        else:
            pixels, grids, keys = np.zeros((0, self._patch_width), np.float16), [], []
        encoded = self._encoder.encode(prompt, grids, keys)
        if encoded.input_ids.size > self._engine.max_input_len:
            raise InvalidInput(
                "text_input",
                f"prompt is {encoded.input_ids.size} tokens (with {encoded.visual_tokens} image tokens); "
                f"the engine takes at most {self._engine.max_input_len}",
            )
        return PreparedRequest(
            input_ids=encoded.input_ids,
            vision_input_ids=encoded.vision_input_ids,
            prompt_table_extra_ids=encoded.prompt_table_extra_ids,
            request_output_len=min(max_tokens, self._engine.max_seq_len - encoded.input_ids.size),
            pixel_values=pixels,
            image_grid_thw=np.asarray(grids, dtype=np.int64).reshape(-1, 3),
        )


@dataclass(frozen=True)
class VisionBatch:
    """One vision-engine call for several requests' images, packed along the patch axis."""

    input: np.ndarray  # (patches, 1176)
    rotary_pos_emb: np.ndarray  # float32 (patches, vit_head_dim / 2)
    attention_mask: np.ndarray  # (1, patches, patches), block-diagonal per frame
    grids_per_request: tuple[tuple[Grid, ...], ...]


def vision_batch(
    pixel_values: Sequence[np.ndarray], grids_per_request: Sequence[np.ndarray], checkpoint: Qwen2VLCheckpoint
) -> VisionBatch:
    grids = tuple(tuple(tuple(int(v) for v in row) for row in grid) for grid in grids_per_request)
    flat = [grid for request in grids for grid in request]
    patches = np.concatenate(pixel_values) if pixel_values else np.zeros((0, 0))
    return VisionBatch(
        input=patches,
        rotary_pos_emb=vision_rotary_angles(flat, checkpoint.vision),
        attention_mask=vision_attention_mask(flat, patches.dtype if patches.size else np.float16),
        grids_per_request=grids,
    )


@dataclass(frozen=True)
class MropeInputs:
    mrope_rotary_cos_sin: np.ndarray  # float32 (rows · head_dim,)
    mrope_position_deltas: int


def mrope_inputs(
    vision_input_ids: np.ndarray, grids: Sequence[Grid], checkpoint: Qwen2VLCheckpoint, table_rows: int
) -> MropeInputs:
    positions, delta = mrope_position_ids(vision_input_ids, grids, checkpoint)
    return MropeInputs(mrope_cos_sin(positions, checkpoint, table_rows), delta)
