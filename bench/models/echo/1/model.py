"""Returns `title` as `result`: a single Python-backend hop, the baseline of the serving-overhead benchmark."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(
                [pb_utils.Tensor("result", pb_utils.get_input_tensor_by_name(r, "title").as_numpy())]
            )
            for r in requests
        ]
