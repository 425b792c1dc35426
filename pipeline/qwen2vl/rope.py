"""Positions for the GPU profile, in numpy: mRoPE for the language model, 2-D RoPE and attention blocks for ViT.

tests/test_qwen2vl_rope.py checks each against Hugging Face's Qwen2-VL on the CPU.

TensorRT-LLM reads `mrope_rotary_cos_sin` by token index during the context phase and switches to
`position + mrope_position_deltas` with its ordinary rotary table while generating. So only the prompt's rows
are ever read: this module computes those rows and pads the rest with the identity rotation (cos 1, sin 0)
up to the row count the engine was built for (`max_position_embeddings` of the built checkpoint, which
`build-engines` sets to max_seq_len). NVIDIA's reference computes all 32,768 rows for every request (16 MiB).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .checkpoint import Qwen2VLCheckpoint, VisionConfig

Grid = tuple[int, int, int]


def mrope_position_ids(
    vision_input_ids: np.ndarray, grids: Sequence[Grid], checkpoint: Qwen2VLCheckpoint
) -> tuple[np.ndarray, int]:
    """(3, tokens) temporal/height/width positions and the delta generation adds to a token's index."""
    merge = checkpoint.vision.spatial_merge_size
    starts = _run_starts(vision_input_ids == checkpoint.image_token_id)
    if len(starts) != len(grids):
        raise ValueError(f"{len(starts)} image token runs for {len(grids)} image grids")
    pieces, cursor, next_position = [], 0, 0
    for start, (t, h, w) in zip(starts, grids, strict=True):
        text = np.arange(start - cursor) + next_position
        pieces.append(np.broadcast_to(text, (3, text.size)))
        grid_h, grid_w = h // merge, w // merge
        t_index, h_index, w_index = np.meshgrid(np.arange(t), np.arange(grid_h), np.arange(grid_w), indexing="ij")
        image = np.stack([t_index.ravel(), h_index.ravel(), w_index.ravel()]) + next_position + text.size
        pieces.append(image)
        cursor = start + t * grid_h * grid_w
        next_position = int(image.max()) + 1
    tail = np.arange(vision_input_ids.size - cursor) + next_position
    pieces.append(np.broadcast_to(tail, (3, tail.size)))
    positions = np.concatenate(pieces, axis=1).astype(np.int64)
    return positions, int(positions.max()) + 1 - vision_input_ids.size


def _run_starts(mask: np.ndarray) -> list[int]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8)])) == 1)
    return edges.tolist()


def inverse_frequencies(dim: int, theta: float) -> np.ndarray:
    exponents = np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)
    return (np.float32(1.0) / np.power(np.float32(theta), exponents)).astype(np.float32)


def mrope_cos_sin(positions: np.ndarray, checkpoint: Qwen2VLCheckpoint, rows: int) -> np.ndarray:
    """The engine's mrope_rotary_cos_sin: `rows` × head_dim float32, (cos, sin) interleaved per frequency."""
    tokens = positions.shape[1]
    if tokens > rows:
        raise ValueError(f"prompt of {tokens} tokens exceeds the engine's {rows} mRoPE rows")
    inv_freq = inverse_frequencies(checkpoint.head_dim, checkpoint.rope_theta)
    angles = positions[:, :, None].astype(np.float32) * inv_freq  # (3, tokens, head_dim/2)
    axis_of_frequency = np.repeat(np.arange(len(checkpoint.mrope_section)) % 3, checkpoint.mrope_section)
    chosen = angles[axis_of_frequency, :, np.arange(inv_freq.size)].T  # (tokens, head_dim/2)
    table = np.empty((rows, inv_freq.size, 2), dtype=np.float32)
    table[:tokens, :, 0], table[:tokens, :, 1] = np.cos(chosen), np.sin(chosen)
    table[tokens:, :, 0], table[tokens:, :, 1] = 1.0, 0.0
    return table.reshape(-1)


def vision_rotary_angles(grids: Sequence[Grid], vision: VisionConfig, theta: float = 10_000.0) -> np.ndarray:
    """The ViT's `rotary_pos_emb` input: (patches, head_dim/2) angles, height then width frequencies."""
    merge = vision.spatial_merge_size
    rows = []
    for t, h, w in grids:
        h_index, w_index = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        # Patches are ordered merge block by merge block (as the image preprocessing emits them).
        blocks = (h // merge, merge, w // merge, merge)
        h_index = h_index.reshape(blocks).transpose(0, 2, 1, 3).ravel()
        w_index = w_index.reshape(blocks).transpose(0, 2, 1, 3).ravel()
        rows.append(np.tile(np.stack([h_index, w_index], axis=1), (t, 1)))
    inv_freq = inverse_frequencies(vision.head_dim // 2, theta)
    angles = np.concatenate(rows)[:, :, None].astype(np.float32) * inv_freq
    return angles.reshape(angles.shape[0], -1)


def vision_cu_seqlens(grids: Sequence[Grid]) -> np.ndarray:
    """Start offsets of each frame's patches in the packed ViT batch, ending with the total."""
    lengths = np.repeat([h * w for _, h, w in grids], [t for t, _, _ in grids])
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def vision_attention_mask(grids: Sequence[Grid], dtype: type = np.float16) -> np.ndarray:
    """(1, patches, patches) additive mask: 0 inside each frame's block, the dtype's minimum across frames."""
    bounds = vision_cu_seqlens(grids)
    frame = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))
    mask = np.where(frame[:, None] == frame[None, :], 0, np.finfo(dtype).min).astype(dtype)
    return mask[None]


def rows_per_request(grids_per_request: Sequence[Sequence[Grid]], merge: int) -> list[int]:
    """Encoder output rows belonging to each request of a batch, from each request's own grids."""
    return [sum(t * h * w // merge**2 for t, h, w in grids) for grids in grids_per_request]


def split_per_request(embeddings, grids_per_request: Sequence[Sequence[Grid]], merge: int) -> list:
    """Cut the batched encoder output (numpy or torch) back into requests, by each request's own image sizes.

    NVIDIA's reference cuts it into equal parts, which is wrong as soon as two requests' images differ in size.
    """
    offsets = np.concatenate([[0], np.cumsum(rows_per_request(grids_per_request, merge))])
    if offsets[-1] != embeddings.shape[0]:
        raise ValueError(f"encoder returned {embeddings.shape[0]} rows for grids that need {offsets[-1]}")
    return [embeddings[start:end] for start, end in itertools.pairwise(offsets)]
