"""Triton adapter turning tensorrt_llm's generated ids into the `vlm` contract's text (GPU profile)."""

import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.qwen2vl.tokens import decode_generated, load_tokenizer


class TritonPythonModel:
    def initialize(self, args):
        self.tokenizer = load_tokenizer(triton.model_parameters(args)["tokenizer_dir"])

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            output_ids = pb_utils.get_input_tensor_by_name(request, "output_ids").as_numpy()[0]
            lengths = pb_utils.get_input_tensor_by_name(request, "sequence_length").as_numpy()[0]
            text = decode_generated(self.tokenizer, output_ids, lengths)
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("text_output", text, batch_of_one=True)])
