"""Triton adapter for Qwen2-VL preprocessing (GPU profile); the work is in catalogvlm.pipeline.qwen2vl."""

import numpy as np
import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.qwen2vl.requests import Qwen2VLRequestPreparer


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        self.preparer = Qwen2VLRequestPreparer.from_parameters(parameters)
        self.default_max_tokens = int(parameters["default_max_tokens"])

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            prepared = self.preparer.prepare(
                triton.utf8_input(request, "text_input"),
                triton.bytes_input(request, "image_bytes") or None,
                triton.int_input(request, "max_tokens", self.default_max_tokens),
            )
        except Exception as error:
            return triton.error_response(error)

        def scalar(name, value):
            return pb_utils.Tensor(name, np.array([[value]], dtype=np.int32))

        return pb_utils.InferenceResponse(
            [
                pb_utils.Tensor("input_ids", prepared.input_ids[None]),
                pb_utils.Tensor("vision_input_ids", prepared.vision_input_ids[None]),
                pb_utils.Tensor("prompt_table_extra_ids", prepared.prompt_table_extra_ids[None]),
                scalar("input_lengths", prepared.input_length),
                scalar("request_output_len", prepared.request_output_len),
                scalar("end_id", self.preparer.end_id),
                scalar("pad_id", self.preparer.end_id),
                pb_utils.Tensor("pixel_values", prepared.pixel_values[None]),
                pb_utils.Tensor("image_grid_thw", prepared.image_grid_thw[None]),
            ]
        )
