"""Triton adapter for category correction: `CategoryCorrector.correct` on each element of `category`."""

import json

import triton_python_backend_utils as pb_utils
from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.errors import InvalidInput
from catalogvlm.taxonomy import CategoryCorrector, TaxonomyInputError, load_taxonomy

MAX_CATEGORIES_PER_REQUEST = 1024


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        self.corrector = CategoryCorrector(load_taxonomy(parameters["taxonomy_dir"]))

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            queries = pb_utils.get_input_tensor_by_name(request, "category").as_numpy().reshape(-1)
            if not 1 <= queries.size <= MAX_CATEGORIES_PER_REQUEST:
                raise InvalidInput("category", f"holds {queries.size} elements; send 1 to {MAX_CATEGORIES_PER_REQUEST}")
            answers = [json.dumps(self._correct(index, query).to_dict()) for index, query in enumerate(queries)]
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("result", answers)])

    def _correct(self, index, query):
        try:
            return self.corrector.correct(query)
        except TaxonomyInputError as error:
            raise InvalidInput(f"category[{index}]", str(error)) from error
