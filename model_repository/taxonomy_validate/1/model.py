"""Triton adapter for category correction: each element of `category` through `TaxonomyValidationService`."""

import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.service import TaxonomyValidationService


class TritonPythonModel:
    def initialize(self, args):
        self.service = TaxonomyValidationService(triton.model_parameters(args))

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            queries = pb_utils.get_input_tensor_by_name(request, "category").as_numpy().reshape(-1).tolist()
            answers = self.service.answer(queries)
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("result", answers)])
