"""Triton adapter for the CPU engine behind the `vlm` contract."""

import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.cpu import CpuVlmEngine

DEFAULT_MAX_TOKENS = 512


class TritonPythonModel:
    def initialize(self, args):
        self.engine = CpuVlmEngine.from_parameters(triton.model_parameters(args))

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            prompt = triton.utf8_input(request, "text_input")
            image = triton.bytes_input(request, "image_bytes")
            max_tokens = triton.int_input(request, "max_tokens", DEFAULT_MAX_TOKENS)
            text = self.engine.generate(prompt, image or None, max_tokens)
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("text_output", text, batch_of_one=True)])
