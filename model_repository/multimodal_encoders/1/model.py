"""Triton adapter for the Qwen2-VL vision engine (GPU profile: needs a GPU and TensorRT-LLM's runtime).

Inputs are packed and positions computed by catalogvlm.pipeline.qwen2vl (tested on the CPU against Hugging Face);
this file only moves tensors to the GPU, runs the engine once per batch and hands each request its own rows.
"""

import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from tensorrt_llm._utils import torch_dtype_to_trt, trt_dtype_to_torch
from tensorrt_llm.runtime import Session, TensorInfo

from catalogvlm.pipeline.adapters import triton
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint
from catalogvlm.pipeline.qwen2vl.requests import mrope_inputs, vision_batch
from catalogvlm.pipeline.qwen2vl.rope import split_per_request

ENGINE_OUTPUT = "encoder_output"


class TritonPythonModel:
    def initialize(self, args):
        parameters = triton.model_parameters(args)
        self.checkpoint = Qwen2VLCheckpoint.from_dir(parameters["hf_model_dir"])
        self.table_rows = int(parameters["mrope_table_rows"])
        with open(os.path.join(parameters["visual_engine_dir"], "model.engine"), "rb") as engine:
            self.session = Session.from_serialized_engine(engine.read())
        self.stream = torch.cuda.Stream()

    def execute(self, requests):
        inputs = [self._inputs(request) for request in requests]
        try:
            tables = self._encode([pixels for pixels, _, _ in inputs], [grids for _, grids, _ in inputs])
            return [self._response(table, grids, ids) for table, (_, grids, ids) in zip(tables, inputs, strict=True)]
        except Exception as error:
            return [triton.error_response(error) for _ in requests]

    @staticmethod
    def _inputs(request):
        def tensor(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()[0]

        return tensor("pixel_values"), tensor("image_grid_thw"), tensor("vision_input_ids")

    def _encode(self, pixels, grids):
        """One engine call for every image of the batch; rows split back by each request's own grids."""
        hidden = self.checkpoint.hidden_size
        batch = vision_batch(pixels, grids, self.checkpoint)
        if batch.input.shape[0] == 0:
            return [torch.zeros((0, hidden), dtype=torch.float16) for _ in grids]
        with torch.cuda.stream(self.stream):
            feeds = {
                "input": torch.from_numpy(batch.input).cuda(non_blocking=True),
                "rotary_pos_emb": torch.from_numpy(batch.rotary_pos_emb).cuda(non_blocking=True),
                "attention_mask": torch.from_numpy(batch.attention_mask).cuda(non_blocking=True),
            }
            infos = [TensorInfo(name, torch_dtype_to_trt(t.dtype), tuple(t.shape)) for name, t in feeds.items()]
            outputs = {
                info.name: torch.empty(tuple(info.shape), dtype=trt_dtype_to_torch(info.dtype), device="cuda")
                for info in self.session.infer_shapes(infos)
            }
            if not self.session.run(feeds, outputs, self.stream.cuda_stream):
                raise RuntimeError("vision engine execution failed")
        self.stream.synchronize()
        merge = self.checkpoint.vision.spatial_merge_size
        return [rows.to(torch.float16).cpu() for rows in split_per_request(outputs[ENGINE_OUTPUT], grids, merge)]

    def _response(self, table, grids, vision_input_ids):
        mrope = mrope_inputs(vision_input_ids, grids, self.checkpoint, self.table_rows)
        if table.shape[0] == 0:  # text only: the engine still wants a (never addressed) one-row table
            table = torch.zeros((1, self.checkpoint.hidden_size), dtype=torch.float16)
        return pb_utils.InferenceResponse(
            [
                pb_utils.Tensor("prompt_embedding_table", table.numpy()[None]),
                pb_utils.Tensor("prompt_vocab_size", np.array([[table.shape[0]]], dtype=np.int32)),
                pb_utils.Tensor("mrope_rotary_cos_sin", mrope.mrope_rotary_cos_sin[None]),
                pb_utils.Tensor("mrope_position_deltas", np.array([[mrope.mrope_position_deltas]], dtype=np.int64)),
            ]
        )
