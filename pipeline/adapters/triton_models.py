"""The Triton Python-backend models of catalogvlm; each `model.py` in the repository is one import of these.

- `ProductUnderstandingModel`: asynchronous. `execute` starts one task per request and returns at once;
  each task runs the two-stage chain (awaiting its BLS calls to `vlm`) and answers through the request's
  response sender. The model keeps Triton's default (non-decoupled) transaction policy, so its public
  contract stays a plain unary KServe `ModelInfer`, while one instance carries up to `max_inflight` products.
- `EngineModel`: the `vlm` slot for engines that answer a batch in one pass (the CPU engine, stand-ins),
  fed by Triton's dynamic batcher.
- `OverlappingEngineModel`: the same, asynchronous, for an engine whose batches overlap as an in-flight-batching
  GPU engine's do: up to `overlapping_batches` batches run at once in one instance (the benchmark's stand-in).
- `TaxonomyValidateModel`: category correction, synchronous (sub-millisecond per path).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import triton_python_backend_utils as pb_utils

from .. import contract
from ..chain import ATTRIBUTE_STAGE, CATEGORY_STAGE
from ..engines import OVERLAPPING_BATCHES_PARAMETER, BatchEngine, GenerationRequest, answer_batch, load_engine
from ..errors import Overloaded, PipelineError
from ..product import TEXT_FIELDS
from ..service import ProductUnderstandingService, TaxonomyValidationService
from . import triton

DEFAULT_MAX_TOKENS = 512
SHUTDOWN_GRACE_S = 10.0
# Threads beyond one per product in flight, for the chain's CPU steps (image checks, taxonomy work).
CPU_STEP_THREADS = 4


class ProductUnderstandingModel:
    def initialize(self, args: dict[str, str]) -> None:
        parameters = triton.model_parameters(args)
        metrics = triton.TritonMetrics(
            args["model_name"], args["model_instance_name"], (CATEGORY_STAGE, ATTRIBUTE_STAGE)
        )
        engine = triton.BlsVlmEngine(parameters["vlm_model_name"], int(parameters["vlm_timeout_ms"]))
        self.service = ProductUnderstandingService(parameters, engine, observer=metrics)
        self._tasks: set[asyncio.Task[None]] = set()  # references keep running tasks from being collected
        self._loop: asyncio.AbstractEventLoop | None = None

    async def execute(self, requests: list[pb_utils.InferenceRequest]) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            # Triton 2.51's `async_exec` waits for the BLS response in the loop's default executor
            # (pb_stub.cc: run_in_executor(None, ...)): one thread per product awaiting `vlm`. The default
            # pool (min(32, cores + 4) threads) would cap the products in flight far below max_inflight.
            workers = self.service.admission.max_inflight + CPU_STEP_THREADS
            self._loop.set_default_executor(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bls"))
        for request in requests:
            task = asyncio.create_task(self._answer(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return None  # every response goes through its request's response sender

    async def _answer(self, request: pb_utils.InferenceRequest) -> None:
        try:
            raw = {name: triton.text_input(request, name) for name in TEXT_FIELDS}
            result = await self.service.answer(raw, triton.bytes_input(request, contract.IMAGE_INPUT_NAME))
            response = pb_utils.InferenceResponse([triton.text_tensor(contract.RESULT_OUTPUT_NAME, result)])
        except asyncio.CancelledError:  # shutdown gave up waiting for this product: answer it all the same
            response = triton.error_response(Overloaded("the server is shutting down; retry on another instance"))
        except Exception as error:
            response = triton.error_response(error)
        request.get_response_sender().send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self) -> None:
        """Refuse new products, let those in flight finish for a grace period, then answer the rest."""
        self.service.admission.closing = True
        if self._loop is not None and self._tasks and not self._loop.is_closed():
            drained = asyncio.run_coroutine_threadsafe(_drain(self._tasks, SHUTDOWN_GRACE_S), self._loop)
            drained.result(SHUTDOWN_GRACE_S + 5)


async def _drain(tasks: set[asyncio.Task[None]], grace_s: float) -> None:
    _, late = await asyncio.wait(set(tasks), timeout=grace_s)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


class EngineModel:
    """A `BatchEngine` (named by the config's `engine_factory`) behind the `vlm` contract."""

    def initialize(self, args: dict[str, str]) -> None:
        self.engine = load_engine(triton.model_parameters(args))

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> list[pb_utils.InferenceResponse]:
        return _answer_batch(self.engine, requests)


class OverlappingEngineModel:
    """`EngineModel` whose `execute` returns at once: each batch runs on a worker thread (up to the config's
    `overlapping_batches` at a time) and answers through its requests' response senders, so the next batch
    starts while earlier ones run."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = triton.model_parameters(args)
        self.engine = load_engine(parameters)
        overlapping = int(parameters.get(OVERLAPPING_BATCHES_PARAMETER, "1"))
        self._threads = ThreadPoolExecutor(max_workers=overlapping, thread_name_prefix="engine-batch")
        self._tasks: set[asyncio.Task[None]] = set()  # references keep running tasks from being collected

    async def execute(self, requests: list[pb_utils.InferenceRequest]) -> None:
        task = asyncio.create_task(self._answer(requests))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None  # every response goes through its request's response sender

    async def _answer(self, requests: list[pb_utils.InferenceRequest]) -> None:
        loop = asyncio.get_running_loop()
        responses = await loop.run_in_executor(self._threads, _answer_batch, self.engine, requests)
        for request, response in zip(requests, responses, strict=True):
            request.get_response_sender().send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


def _answer_batch(engine: BatchEngine, requests: list[pb_utils.InferenceRequest]) -> list[pb_utils.InferenceResponse]:
    decoded: list[GenerationRequest | PipelineError] = [_generation_request(r) for r in requests]
    valid = [d for d in decoded if isinstance(d, GenerationRequest)]
    answers = iter(answer_batch(engine, valid))
    return [_engine_response(d if isinstance(d, PipelineError) else next(answers)) for d in decoded]


def _generation_request(request: pb_utils.InferenceRequest) -> GenerationRequest | PipelineError:
    try:
        return GenerationRequest(
            prompt=triton.utf8_input(request, contract.TEXT_INPUT),
            image=triton.bytes_input(request, contract.IMAGE_INPUT) or None,
            max_tokens=triton.int_input(request, contract.MAX_TOKENS_INPUT, DEFAULT_MAX_TOKENS),
        )
    except PipelineError as error:
        return error


def _engine_response(answer: str | BaseException) -> pb_utils.InferenceResponse:
    if isinstance(answer, BaseException):
        return triton.error_response(answer)
    return pb_utils.InferenceResponse([triton.text_tensor(contract.TEXT_OUTPUT, answer, batch_of_one=True)])


class TaxonomyValidateModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.service = TaxonomyValidationService(triton.model_parameters(args))

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> list[pb_utils.InferenceResponse]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: pb_utils.InferenceRequest) -> pb_utils.InferenceResponse:
        try:
            queries = pb_utils.get_input_tensor_by_name(request, contract.CATEGORY_INPUT_NAME).as_numpy()
            answers = self.service.answer(queries.reshape(-1).tolist())
        except Exception as error:
            return triton.error_response(error)
        return pb_utils.InferenceResponse([triton.text_tensor(contract.RESULT_OUTPUT_NAME, answers)])
