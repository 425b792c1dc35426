"""Dynamo glue: tensor-based models (KServe v2 through Dynamo's frontend) over the same pipeline services.

Requests arrive as Dynamo tensor dicts; inputs are checked against the model's own Triton ModelConfig (so
Triton and Dynamo reject the same requests with the same field names). The worker's event loop awaits the
same asynchronous chain the Triton model runs, so no thread pool bounds how many products are in flight
(`max_inflight` does). Errors become the Dynamo exception class the contract names for their status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import numpy as np
import tritonclient.grpc.model_config_pb2 as mc
from dynamo.common.backend.health_check import is_probe
from dynamo.llm import exceptions as dynamo_errors
from dynamo.triton.util import (
    DYNAMO_TO_TRITON_DTYPE,
    TRITON_TO_DYNAMO_DTYPE,
    dynamo_tensor_to_numpy,
    numpy_to_dynamo_values,
)

from .. import contract
from ..candidates import CandidateSource
from ..contract import (
    CANDIDATES_OUTPUT,
    CATEGORY_INPUT_NAME,
    IMAGE_INPUT_NAME,
    RESULT_OUTPUT_NAME,
    TOP_K_INPUT,
    Product,
)
from ..errors import InvalidInput, public_message, status_of
from ..product import TEXT_FIELDS
from ..service import CandidateRequests, ProductUnderstandingService, TaxonomyValidationService

log = logging.getLogger(__name__)

Inputs = Mapping[str, np.ndarray]
Compute = Callable[[Inputs], Awaitable[dict[str, np.ndarray]]]


class TensorModel:
    """One Triton-contract model served by Dynamo: `generate` is the endpoint handler."""

    def __init__(self, config: mc.ModelConfig, compute: Compute) -> None:
        self.config = config
        self.name = config.name
        self._compute = compute

    async def generate(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        if is_probe(request):
            yield {"id": "", "model": self.name, "tensors": []}
            return
        try:
            outputs = await self._compute(self._checked_inputs(request.get("tensors") or []))
        except Exception as error:
            raise dynamo_error(error) from None
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
            dims = ([-1] if self.config.max_batch_size > 0 else []) + list(spec.dims)  # Triton's batch dimension
            if not _shape_fits(list(array.shape), dims):
                raise InvalidInput(name, f"shape {list(array.shape)} does not match {dims}")
            received[name] = array
        missing = [i.name for i in self.config.input if not i.optional and i.name not in received]
        if missing:
            raise InvalidInput(missing[0], f"is a required input of model '{self.name}'")
        return received


def dynamo_error(error: BaseException) -> Exception:
    """The Dynamo exception the contract prescribes for the error's status (catalogvlm.errors)."""
    class_name, message = contract.dynamo_error(status_of(error), public_message(error, log))
    return getattr(dynamo_errors, class_name)(message)


def product_understanding(config: mc.ModelConfig, service: ProductUnderstandingService) -> TensorModel:
    async def compute(inputs: Inputs) -> dict[str, np.ndarray]:
        raw = {name: _single_bytes(inputs[name]) for name in TEXT_FIELDS if name in inputs}
        image = inputs[IMAGE_INPUT_NAME].astype(np.uint8).tobytes() if IMAGE_INPUT_NAME in inputs else None
        return {RESULT_OUTPUT_NAME: np.array([(await service.answer(raw, image)).encode()], dtype=np.object_)}

    return TensorModel(config, compute)


def category_candidates(config: mc.ModelConfig, source: CandidateSource, requests: CandidateRequests) -> TensorModel:
    async def compute(inputs: Inputs) -> dict[str, np.ndarray]:
        raw = {name: _single_bytes(inputs[name]) for name in TEXT_FIELDS if name in inputs}
        top_k = int(inputs[TOP_K_INPUT].reshape(-1)[0]) if TOP_K_INPUT in inputs else requests.default_top_k
        request = requests.decode(raw, top_k)
        found = await source.find(Product(**request.fields), request.top_k)
        return {CANDIDATES_OUTPUT: np.array([[found.to_json().encode()]], dtype=np.object_)}

    return TensorModel(config, compute)


def taxonomy_validate(config: mc.ModelConfig, service: TaxonomyValidationService) -> TensorModel:
    async def compute(inputs: Inputs) -> dict[str, np.ndarray]:
        queries = inputs[CATEGORY_INPUT_NAME].reshape(-1).tolist()
        answers = await asyncio.to_thread(service.answer, queries)
        return {RESULT_OUTPUT_NAME: np.array([a.encode() for a in answers], dtype=np.object_)}

    return TensorModel(config, compute)


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
