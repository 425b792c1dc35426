"""Triton adapter for the two-stage chain: tensors in, `ProductUnderstandingService.answer`, JSON out."""

import triton_python_backend_utils as pb_utils

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.chain import ATTRIBUTE_STAGE, CATEGORY_STAGE
from catalogvlm.pipeline.product import TEXT_FIELDS
from catalogvlm.pipeline.service import ProductUnderstandingService


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        self.metrics = triton.TritonMetrics(args["model_name"], (CATEGORY_STAGE, ATTRIBUTE_STAGE))
        engine = triton.BlsVlmEngine(parameters["vlm_model_name"], int(parameters["vlm_timeout_ms"]))
        self.service = ProductUnderstandingService(parameters, engine, observer=self.metrics)

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            raw = {name: triton.text_input(request, name) for name in TEXT_FIELDS}
            result = self.service.answer(raw, triton.bytes_input(request, "image"))
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("result", result)])
