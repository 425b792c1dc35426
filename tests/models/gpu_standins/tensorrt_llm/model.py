"""Test stand-in (tests only) for the TensorRT-LLM engine, with the real model's config.pbtxt.

It "generates" the prompt's text tokens back (fake image ids dropped) after checking that what the ensemble
delivered is consistent: one prompt-table row per fake id, extra ids exactly at the image tokens, an mRoPE
table of the configured rows. The test reads the decoded echo; an inconsistency comes back as an error.
"""

import numpy as np
import triton_python_backend_utils as pb_utils

VOCAB_SIZE = 152064  # bench/data/qwen2_vl_7b
HEAD_DIM = 128


class TritonPythonModel:
    def execute(self, requests):
        return [self._answer(request) for request in requests]

    def _answer(self, request):
        def tensor(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

        ids = tensor("input_ids")[0]
        fake = ids >= VOCAB_SIZE
        problems = []
        if tensor("input_lengths").reshape(-1)[0] != ids.size:
            problems.append("input_lengths")
        if fake.any() and tensor("prompt_vocab_size").reshape(-1)[0] != fake.sum():
            problems.append("prompt_vocab_size")
        if not np.array_equal(tensor("prompt_table_extra_ids")[0] != 0, fake):
            problems.append("prompt_table_extra_ids")
        if tensor("mrope_rotary_cos_sin").shape[-1] % HEAD_DIM:
            problems.append("mrope_rotary_cos_sin")
        if problems:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError("inconsistent " + ", ".join(problems)))
        echo = ids[~fake].astype(np.int32)
        return pb_utils.InferenceResponse(
            [
                pb_utils.Tensor("output_ids", echo[None, None]),
                pb_utils.Tensor("sequence_length", np.array([[echo.size]], dtype=np.int32)),
            ]
        )
