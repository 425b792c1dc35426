"""Dynamo glue: tensor-based models (KServe v2 through Dynamo's frontend) over the same pipeline services.

Requests arrive as Dynamo tensor dicts; inputs are checked against the model's own Triton ModelConfig (so
Triton and Dynamo reject the same requests with the same field names), the blocking pipeline call runs in
a thread pool off the event loop, and errors map to Dynamo's exception types (INVALID_ARGUMENT for bad
input).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import tritonclient.grpc.model_config_pb2 as mc
from dynamo.common.backend.health_check import is_probe
from dynamo.llm.exceptions import InvalidArgument, Unknown, WorkerUnavailable
from dynamo.triton.util import (
    DYNAMO_TO_TRITON_DTYPE,
    TRITON_TO_DYNAMO_DTYPE,
    dynamo_tensor_to_numpy,
    numpy_to_dynamo_values,
)

from ..errors import EngineError, InvalidInput, StageFailed
from ..product import TEXT_FIELDS
from ..service import ProductUnderstandingService, TaxonomyValidationService

log = logging.getLogger(__name__)

Inputs = Mapping[str, np.ndarray]
Compute = Callable[[Inputs], dict[str, np.ndarray]]


class TensorModel:
    """One Triton-contract model served by Dynamo: `generate` is the endpoint handler."""

    def __init__(
        self, config: mc.ModelConfig, compute: Callable[[Inputs], dict[str, np.ndarray]], pool: ThreadPoolExecutor
    ):
        self.config = config
        self.name = config.name
        self._compute = compute
        self._pool = pool

    async def generate(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        if is_probe(request):
            yield {"id": "", "model": self.name, "tensors": []}
            return
        try:
            inputs = self._checked_inputs(request.get("tensors") or [])
            outputs = await asyncio.get_running_loop().run_in_executor(self._pool, self._compute, inputs)
        except InvalidInput as error:
            raise InvalidArgument(str(error)) from None
        except (StageFailed, EngineError) as error:
            raise WorkerUnavailable(str(error)) from None
        except Exception as error:
            log.exception("unexpected error in %s", self.name)
            raise Unknown(f"{self.name}: internal error ({type(error).__name__})") from None
        yield {"id": request.get("id", ""), "model": self.name, "tensors": [_tensor(k, v) for k, v in outputs.items()]}

    def _checked_inputs(self, tensors: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        declared = {i.name: i for i in self.config.input}
        received = {}
        for tensor in tensors:
            name, data_type = tensor["metadata"]["name"], tensor["metadata"]["data_type"]
            spec = declared.get(name)
            if spec is None:
                raise InvalidInput(name, f"is not an input of model '{self.name}'")
            expected = mc.DataType.Name(spec.data_type).removeprefix("TYPE_").replace("STRING", "BYTES")
            if data_type != TRITON_TO_DYNAMO_DTYPE[expected]:
                sent = DYNAMO_TO_TRITON_DTYPE.get(data_type, data_type)
                raise InvalidInput(name, f"data type is {sent}, but model '{self.name}' expects {expected}")
            array = dynamo_tensor_to_numpy(tensor)
            if not _shape_fits(list(array.shape), list(spec.dims)):
                raise InvalidInput(name, f"shape {list(array.shape)} does not match {list(spec.dims)}")
            received[name] = array
        missing = [i.name for i in self.config.input if not i.optional and i.name not in received]
        if missing:
            raise InvalidInput(missing[0], f"is a required input of model '{self.name}'")
        return received


def product_understanding(config: mc.ModelConfig, service: ProductUnderstandingService, pool: ThreadPoolExecutor):
    def compute(inputs: Inputs) -> dict[str, np.ndarray]:
        raw = {name: _single_bytes(inputs[name]) for name in TEXT_FIELDS if name in inputs}
        image = inputs["image"].astype(np.uint8).tobytes() if "image" in inputs else None
        return {"result": np.array([service.answer(raw, image).encode()], dtype=np.object_)}

    return TensorModel(config, compute, pool)


def taxonomy_validate(config: mc.ModelConfig, service: TaxonomyValidationService, pool: ThreadPoolExecutor):
    def compute(inputs: Inputs) -> dict[str, np.ndarray]:
        answers = service.answer(inputs["category"].reshape(-1).tolist())
        return {"result": np.array([a.encode() for a in answers], dtype=np.object_)}

    return TensorModel(config, compute, pool)


def _single_bytes(array: np.ndarray) -> bytes:
    value = array.reshape(-1)[0]
    return value if isinstance(value, bytes) else str(value).encode()


def _shape_fits(shape: list[int], dims: list[int]) -> bool:
    return len(shape) == len(dims) and all(d == -1 or s == d for s, d in zip(shape, dims, strict=True))


def _tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    """A BYTES output (every output of these models is JSON text)."""
    return {
        "metadata": {"name": name, "shape": list(array.shape), "data_type": "Bytes"},
        "data": {"data_type": "Bytes", "values": numpy_to_dynamo_values(array, "Bytes")},
    }
