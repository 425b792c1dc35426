import collections
from pathlib import Path

import triton_python_backend_utils as pb_utils
from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.cpu import CpuVlmEngine
from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.taxonomy import load_taxonomy

TRUNCATED = '{"attributes": {"color": ["Bl'


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        cache = CategoryEmbeddingCache(Path(parameters["taxonomy_dir"]), Path(parameters["embeddings_dir"]))
        vectors = cache.load(taxonomy)
        self.engine = CpuVlmEngine(taxonomy, category_vectors=vectors)
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
        return pb_utils.InferenceResponse([triton.text_tensor("text_output", text)])
