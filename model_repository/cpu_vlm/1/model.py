"""Triton adapter for the CPU engine behind the `vlm` contract."""

from pathlib import Path

import triton_python_backend_utils as pb_utils
from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.cpu import CpuVlmEngine
from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.pipeline.errors import InvalidInput
from catalogvlm.pipeline.limits import Limits
from catalogvlm.taxonomy import load_taxonomy

DEFAULT_MAX_TOKENS = 512


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        cache = CategoryEmbeddingCache(Path(parameters["taxonomy_dir"]), Path(parameters["embeddings_dir"]))
        vectors = cache.load(taxonomy)
        if vectors is None:
            raise pb_utils.TritonModelException(
                f"no category embeddings for taxonomy {taxonomy.version} at {cache.path}; "
                "run `catalogvlm build-cache` (serve does it) before starting the server"
            )
        self.engine = CpuVlmEngine(taxonomy, Limits.from_parameters(parameters), vectors)

    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        try:
            prompt_bytes = triton.text_input(request, "text_input")
            try:
                prompt = prompt_bytes.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInput("text_input", "is not valid UTF-8") from error
            image = triton.bytes_input(request, "image_bytes")
            max_tokens = triton.int_input(request, "max_tokens", DEFAULT_MAX_TOKENS)
            text = self.engine.generate(prompt, image or None, max_tokens)
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor("text_output", text)])
