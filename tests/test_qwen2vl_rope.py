"""mRoPE, ViT positions and per-request splitting against Hugging Face's Qwen2-VL on the CPU (torch CPU)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from catalogvlm.bench.corpora import QWEN2VL_7B_CONFIG
from catalogvlm.pipeline.qwen2vl.checkpoint import Qwen2VLCheckpoint
from catalogvlm.pipeline.qwen2vl.rope import (
    mrope_cos_sin,
    mrope_position_ids,
    split_per_request,
    vision_attention_mask,
    vision_cu_seqlens,
    vision_rotary_angles,
)

torch = pytest.importorskip("torch")
CHECKPOINT_DIR = QWEN2VL_7B_CONFIG
IMAGE, START, END = 151655, 151652, 151653


@pytest.fixture(scope="module")
def checkpoint() -> Qwen2VLCheckpoint:
    return Qwen2VLCheckpoint.from_dir(CHECKPOINT_DIR)


@pytest.fixture(scope="module")
def hf():
    """A tiny random Qwen2-VL (positions do not depend on weights) and the 7B's rotary embeddings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import Qwen2VLConfig
        from transformers.models.qwen2_vl import modeling_qwen2_vl as modeling

        config = json.loads((CHECKPOINT_DIR / "config.json").read_text())
        full = Qwen2VLConfig(**config)
        tiny = {**config, "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1}
        tiny |= {"num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": None}
        tiny["vision_config"] = {**config["vision_config"], "depth": 1, "embed_dim": 32, "hidden_size": 64}
        model = modeling.Qwen2VLModel(Qwen2VLConfig(**tiny)).eval()
        return {
            "model": model,
            "text_rope": modeling.Qwen2VLRotaryEmbedding(full.text_config),
            "vision_rope": modeling.Qwen2VLVisionRotaryEmbedding(full.vision_config),
        }


def prompt_ids(grids, text_runs=(5, 3, 7)) -> np.ndarray:
    """Text, then `<|vision_start|> pads <|vision_end|>` per image with text between, as the chat prompt has."""
    ids = list(range(100, 100 + text_runs[0]))
    for index, (t, h, w) in enumerate(grids):
        ids += [START, *[IMAGE] * (t * h * w // 4), END, *range(200, 200 + text_runs[(index + 1) % 3])]
    return np.asarray(ids, dtype=np.int64)


@pytest.mark.parametrize("grids", [[(1, 22, 36)], [(1, 4, 6), (1, 10, 8)], [(2, 6, 4)], []])
def test_position_ids_and_delta_equal_get_rope_index(hf, checkpoint, grids):
    ids = prompt_ids(grids)
    ours, delta = mrope_position_ids(ids, grids, checkpoint)
    input_ids = torch.from_numpy(ids)[None]
    with torch.no_grad():
        expected, expected_delta = hf["model"].get_rope_index(
            input_ids,
            (input_ids == IMAGE).int(),
            torch.tensor(grids, dtype=torch.long) if grids else None,
            None,
            torch.ones_like(input_ids),
        )
    np.testing.assert_array_equal(ours, expected[:, 0].numpy())
    assert delta == int(expected_delta.reshape(-1)[0])


def test_documented_grid_gives_delta_minus_three(checkpoint):
    ids = np.array([START, *[IMAGE] * 6, END])
    positions, delta = mrope_position_ids(ids, [(1, 4, 6)], checkpoint)
    assert positions[:, 1:7].tolist() == [[1] * 6, [1, 1, 1, 2, 2, 2], [1, 2, 3, 1, 2, 3]]
    assert delta == -3


def test_cos_sin_table_equals_hugging_face_and_is_only_as_long_as_asked(hf, checkpoint):
    grids = [(1, 22, 36)]
    ids = prompt_ids(grids)
    positions, _ = mrope_position_ids(ids, grids, checkpoint)
    rows = 4096
    table = mrope_cos_sin(positions, checkpoint, rows).reshape(rows, checkpoint.head_dim // 2, 2)
    with torch.no_grad():
        cos, sin = hf["text_rope"](torch.zeros(1), torch.from_numpy(positions)[:, None])
    half = checkpoint.head_dim // 2  # HF repeats the frequencies over both halves of the head
    np.testing.assert_allclose(table[: ids.size, :, 0], cos[0, :, :half].numpy(), atol=2e-5, rtol=0)
    np.testing.assert_allclose(table[: ids.size, :, 1], sin[0, :, :half].numpy(), atol=2e-5, rtol=0)
    assert np.all(table[ids.size :, :, 0] == 1) and np.all(table[ids.size :, :, 1] == 0)
    assert table.nbytes == rows * checkpoint.head_dim * 4 == 2 * 1024 * 1024  # vs 16 MiB for 32,768 rows
    with pytest.raises(ValueError, match="exceeds"):
        mrope_cos_sin(positions, checkpoint, ids.size - 1)


def test_vision_rotary_angles_equal_hugging_face(hf, checkpoint):
    from transformers.vision_utils import get_vision_position_ids

    grids = [(1, 22, 36), (1, 4, 6)]
    ours = vision_rotary_angles(grids, checkpoint.vision)
    positions = get_vision_position_ids(torch.tensor(grids), checkpoint.vision.spatial_merge_size)
    with torch.no_grad():
        cos, sin = hf["vision_rope"](torch.zeros(1), positions)
    half = checkpoint.vision.head_dim // 2
    np.testing.assert_allclose(np.cos(ours), cos[..., :half].numpy(), atol=1e-6)
    np.testing.assert_allclose(np.sin(ours), sin[..., :half].numpy(), atol=1e-6)


def test_block_diagonal_mask_follows_cu_seqlens():
    from transformers.vision_utils import get_vision_cu_seqlens

    grids = [(1, 2, 2), (2, 2, 4)]
    bounds = vision_cu_seqlens(grids)
    np.testing.assert_array_equal(bounds, get_vision_cu_seqlens(torch.tensor(grids)).numpy())
    assert bounds.tolist() == [0, 4, 12, 20]
    mask = vision_attention_mask(grids)[0]
    assert mask.shape == (20, 20) and mask.dtype == np.float16
    assert np.all(mask[0:4, 0:4] == 0) and np.all(mask[4:12, 4:12] == 0) and np.all(mask[12:, 12:] == 0)
    assert np.all(mask[0:4, 4:] == np.finfo(np.float16).min) and np.all(mask[4:12, 12:] == np.finfo(np.float16).min)


def test_batched_encoder_output_is_split_by_each_requests_own_images():
    requests = [[(1, 22, 36)], [(1, 4, 6)], [(1, 8, 8), (1, 4, 4)]]
    counts = [198, 6, 16 + 4]
    rows = np.arange(sum(counts))[:, None].repeat(3, axis=1)
    parts = split_per_request(rows, requests, merge=2)
    assert [p.shape[0] for p in parts] == counts
    assert parts[1][0, 0] == 198 and parts[2][-1, 0] == sum(counts) - 1
    # the same for torch tensors, as the GPU model hands them over
    assert [p.shape[0] for p in split_per_request(torch.from_numpy(rows), requests, merge=2)] == counts
    with pytest.raises(ValueError, match="rows"):
        split_per_request(rows[:-1], requests, merge=2)


def test_one_vision_batch_packs_every_requests_images(checkpoint):
    from catalogvlm.pipeline.qwen2vl.requests import mrope_inputs, vision_batch

    with_image = np.ones((22 * 36, 1176), np.float16)
    text_only = np.zeros((0, 1176), np.float16)
    batch = vision_batch([with_image, text_only, with_image[:16]], [[(1, 22, 36)], [], [(1, 4, 4)]], checkpoint)
    assert batch.input.shape == (792 + 16, 1176)
    assert batch.rotary_pos_emb.shape == (808, checkpoint.vision.head_dim // 2)
    assert batch.attention_mask.shape == (1, 808, 808) and batch.attention_mask.dtype == np.float16
    assert batch.attention_mask[0, 0, 791] == 0 and batch.attention_mask[0, 0, 792] != 0
    assert batch.grids_per_request == (((1, 22, 36),), (), ((1, 4, 4),))
    text = mrope_inputs(np.arange(10), [], checkpoint, table_rows=16)
    assert text.mrope_position_deltas == 0 and text.mrope_rotary_cos_sin.shape == (16 * checkpoint.head_dim,)
