"""A `vlm` that answers instantly with a valid stage-1 or stage-2 JSON: the pipeline's own cost, measured."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

CATEGORY = json.dumps(
    {
        "category": "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",
        "simplified_description": "A cotton t-shirt.",
        "image_description": "",
    }
).encode()
ATTRIBUTES = json.dumps({"attributes": {"color": ["Black"], "fabric": ["Cotton"]}}).encode()


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            prompt = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)[0]
            answer = ATTRIBUTES if b"<attribute_menu>" in prompt else CATEGORY
            responses.append(
                pb_utils.InferenceResponse([pb_utils.Tensor("text_output", np.array([[answer]], np.object_))])
            )
        return responses
