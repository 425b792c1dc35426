"""Test stand-in (tests only) for the GPU-only vision engine, with the real model's config.pbtxt.

Zero embeddings of the right size per request, and the real mRoPE inputs from catalogvlm.pipeline.qwen2vl:
what is tested is the GPU `vlm` ensemble's wiring and the real preprocess/postprocess models on tritonserver.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint
from catalogvlm.pipeline.qwen2vl.requests import mrope_inputs
from catalogvlm.pipeline.qwen2vl.rope import rows_per_request


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.checkpoint = Qwen2VLCheckpoint.from_dir(parameters["hf_model_dir"]["string_value"])
        self.rows = int(parameters["mrope_table_rows"]["string_value"])

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        def tensor(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()[0]

        grids, ids = tensor("image_grid_thw"), tensor("vision_input_ids")
        (rows,) = rows_per_request([grids], self.checkpoint.vision.spatial_merge_size)
        table = np.zeros((max(rows, 1), 8), dtype=np.float16)
        mrope = mrope_inputs(ids, grids, self.checkpoint, self.rows)
        return pb_utils.InferenceResponse(
            [
                pb_utils.Tensor("prompt_embedding_table", table[None]),
                pb_utils.Tensor("prompt_vocab_size", np.array([[table.shape[0]]], dtype=np.int32)),
                pb_utils.Tensor("mrope_rotary_cos_sin", mrope.mrope_rotary_cos_sin[None]),
                pb_utils.Tensor("mrope_position_deltas", np.array([[mrope.mrope_position_deltas]], dtype=np.int64)),
            ]
        )
