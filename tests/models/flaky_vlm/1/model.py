import collections

import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.cpu import CpuVlmEngine

TRUNCATED = '{"attributes": {"color": ["Bl'


class TritonPythonModel:
    def initialize(self, args):
        self.engine = CpuVlmEngine.from_parameters(triton.model_parameters(args))
        self.stage2_calls = collections.Counter()

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        prompt = triton.text_input(request, "text_input").decode("utf-8")
        title = prompts.product_from_prompt(prompt).get("title", "")
        text = self.engine.generate(prompt, triton.bytes_input(request, "image_bytes"), 512)
        if prompts.read_block(prompt, "attribute_menu") is not None:
            self.stage2_calls[title] += 1
            if "[fail-attributes]" in title or ("[retry-once]" in title and self.stage2_calls[title] == 1):
                text = TRUNCATED
        return pb_utils.InferenceResponse([triton.text_tensor("text_output", text, batch_of_one=True)])
