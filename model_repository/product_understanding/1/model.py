"""Triton adapter for the two-stage chain: tensors in, `ProductUnderstandingChain.run`, JSON out."""

import json

import triton_python_backend_utils as pb_utils
from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.chain import ATTRIBUTE_STAGE, CATEGORY_STAGE, ChainSettings, ProductUnderstandingChain
from catalogvlm.pipeline.limits import Limits
from catalogvlm.pipeline.product import TEXT_FIELDS, product_from_raw
from catalogvlm.taxonomy import load_taxonomy


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        self.limits = Limits.from_parameters(parameters)
        self.metrics = triton.TritonMetrics(args["model_name"], (CATEGORY_STAGE, ATTRIBUTE_STAGE))
        engine = triton.BlsVlmEngine(parameters["vlm_model_name"], int(parameters["vlm_timeout_ms"]))
        settings = ChainSettings(
            max_retries_per_stage=int(parameters["max_retries_per_stage"]),
            category_max_tokens=int(parameters["category_max_tokens"]),
            attribute_max_tokens=int(parameters["attribute_max_tokens"]),
        )
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        self.chain = ProductUnderstandingChain(taxonomy, engine, settings, observer=self.metrics)

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            raw = {name: triton.text_input(request, name) for name in TEXT_FIELDS}
            product = product_from_raw(raw, triton.bytes_input(request, "image"), self.limits)
            prediction = self.chain.run(product)
        except Exception as error:
            return triton.error_response(error)
        result = json.dumps(prediction.to_dict(), ensure_ascii=False)
        return pb_utils.InferenceResponse([triton.text_tensor("result", result)])
