"""Test stand-in (tests only) for NVIDIA's TensorRT-LLM LLM-API model, served with our rendered config.pbtxt and
model.yaml (max_batch_size 0: one prompt per request, no batch dimension).

It checks what the BLS sent the way NVIDIA's model reads it: one prompt in text_input; one image_url per image
placeholder, a data: URI (NVIDIA refuses paths) of the image whose key the prompt carries before its pads; greedy
sampling and a max_tokens. Then it answers as the scripted engine does, with image_description naming the image's
MIME type. A problem comes back as an error, which the test sees.
"""

import base64
import json
import re

import engine_doubles
import numpy as np
import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.engines import GenerationRequest
from catalogvlm.pipeline.images import image_key

DATA_URI = re.compile(r"^data:(image/[a-z]+);base64,(.+)$", re.DOTALL)


class TritonPythonModel:
    def initialize(self, args):
        self.engine = engine_doubles.ScriptedEngine({})

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        def values(name):
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            return None if tensor is None else tensor.as_numpy()

        texts, urls = values("text_input"), values("image_url")
        prompt = texts[0].decode() if texts is not None and texts.shape == (1,) else None
        problems = [] if prompt is not None else ["text_input is not one prompt"]
        mime = ""
        if prompt is not None and prompt.count(prompts.IMAGE_PLACEHOLDER) != (0 if urls is None else urls.size):
            problems.append("image_url count differs from the prompt's image placeholders")
        if urls is not None and urls.size == 1:
            found = DATA_URI.match(urls[0].decode())
            if found is None:
                problems.append("image_url is not a data: URI")
            else:
                mime = found.group(1)
                if f"key {image_key(base64.b64decode(found.group(2)))}" not in prompt:
                    problems.append("the prompt does not carry this image's key")
        temperature, max_tokens = values("sampling_param_temperature"), values("sampling_param_max_tokens")
        if temperature is None or temperature.tolist() != [0.0]:
            problems.append("sampling is not greedy")
        if max_tokens is None or max_tokens.shape != (1,) or max_tokens[0] < 1:
            problems.append("no sampling_param_max_tokens")
        if problems:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError("; ".join(problems)))
        (answer,) = self.engine.generate_batch([GenerationRequest(prompt, None, int(max_tokens[0]))])
        if mime and prompts.read_block(prompt, "attribute_menu") is None:
            answer = json.dumps({**json.loads(answer), "image_description": f"{mime} via image_url"})
        return pb_utils.InferenceResponse([pb_utils.Tensor("text_output", np.array([answer.encode()], dtype=object))])
