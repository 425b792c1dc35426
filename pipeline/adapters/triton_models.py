"""The Triton Python-backend models of catalogvlm; each `model.py` in the repository is one import of these.

- `ProductUnderstandingModel`: asynchronous. `execute` hands each request to the instance's own event loop
  and returns at once; there a task runs the two-stage chain (awaiting its BLS calls to `vlm`) and answers
  through the request's response sender. The model keeps Triton's default (non-decoupled) transaction policy,
  so its public contract stays a plain unary KServe `ModelInfer`, while one instance carries up to
  `max_inflight` products. `execute` is deliberately not `async def`: Triton 2.51's stub runs an async
  `execute` on its loop and waits until it has run, and with hundreds of products on that loop each wait took
  3.5-4.5 ms, one request at a time, so requests queued 37-85 ms in front of the instance (bench section 6).
- `EngineModel`: the `vlm` slot for engines that answer a batch in one pass (the CPU engine, stand-ins),
  fed by Triton's dynamic batcher.
- `OverlappingEngineModel`: the same for an engine whose batches overlap, as an in-flight-batching GPU engine's
  do: up to `overlapping_batches` batches run at once on worker threads of one instance (the bench's stand-in).
- `CategoryCandidatesModel`: retrieval's top-K categories of a product (grounded prompts, the cost cascade).
- `TaxonomyValidateModel`: category correction, synchronous (sub-millisecond per path).
- `ProductEmbeddingsModel`: text and image vectors of a batch of products, one pass per encoder.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import triton_python_backend_utils as pb_utils

from .. import contract
from ..candidates import CandidateRequest, CategoryCandidates
from ..chain import ATTRIBUTE_STAGE, CATEGORY_STAGE
from ..contract import CANDIDATES_MODEL, CANDIDATES_OUTPUT, TOP_K_INPUT
from ..engines import OVERLAPPING_BATCHES_PARAMETER, BatchEngine, GenerationRequest, answer_batch, load_engine
from ..errors import Overloaded, PipelineError
from ..limits import Limits
from ..product import TEXT_FIELDS
from ..product_embeddings import EmbeddingRequest, ProductEmbedder, ProductVectors, embedding_request
from ..service import (
    CANDIDATES_MODEL_PARAMETER,
    VLM_PROTOCOL_PARAMETER,
    CandidateRequests,
    ProductUnderstandingService,
    TaxonomyValidationService,
)
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
        timeout_ms = int(parameters["vlm_timeout_ms"])
        engine = triton.VLM_ENGINES[parameters[VLM_PROTOCOL_PARAMETER]](parameters["vlm_model_name"], timeout_ms)
        candidates = triton.BlsCandidateSource(parameters.get(CANDIDATES_MODEL_PARAMETER, CANDIDATES_MODEL), timeout_ms)
        self.service = ProductUnderstandingService(parameters, engine, candidates, observer=metrics)
        self._tasks: set[asyncio.Task[None]] = set()  # references keep running tasks from being collected
        self._loop = asyncio.new_event_loop()
        # Triton 2.51's `async_exec` waits for the BLS response in the loop's default executor (pb_stub.cc:
        # run_in_executor(None, ...)): one thread per product awaiting `vlm`. The default pool (min(32, cores + 4)
        # threads) would cap the products in flight far below max_inflight.
        workers = self.service.admission.max_inflight + CPU_STEP_THREADS
        self._loop.set_default_executor(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bls"))
        threading.Thread(target=self._loop.run_forever, name="catalogvlm-chain", daemon=True).start()

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> None:
        for request in requests:
            self._loop.call_soon_threadsafe(self._start, request)
        return None  # every response goes through its request's response sender

    def _start(self, request: pb_utils.InferenceRequest) -> None:
        task = asyncio.create_task(self._answer(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        drained = asyncio.run_coroutine_threadsafe(_drain(self._tasks, SHUTDOWN_GRACE_S), self._loop)
        drained.result(SHUTDOWN_GRACE_S + 5)
        self._loop.call_soon_threadsafe(self._loop.stop)


async def _drain(tasks: set[asyncio.Task[None]], grace_s: float) -> None:
    if not tasks:
        return
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

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> None:
        self._threads.submit(self._answer, requests)
        return None  # every response goes through its request's response sender

    def _answer(self, requests: list[pb_utils.InferenceRequest]) -> None:
        for request, response in zip(requests, _answer_batch(self.engine, requests), strict=True):
            request.get_response_sender().send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self) -> None:
        self._threads.shutdown(wait=True)  # the batches running now still answer


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


class CategoryCandidatesModel:
    """The `category_candidates` step (retrieval on the CPU, in every profile), fed by Triton's dynamic batcher:
    one embedding pass per batch."""

    def initialize(self, args: dict[str, str]) -> None:
        from ..cpu.retrieval import CategoryRetriever  # the `cpu` extra: loaded only by the model that uses it

        parameters = triton.model_parameters(args)
        self.retriever = CategoryRetriever.from_parameters(parameters)
        self.requests = CandidateRequests(parameters)

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> list[pb_utils.InferenceResponse]:
        decoded = [self._decode(r) for r in requests]
        valid = [d for d in decoded if not isinstance(d, PipelineError)]
        answers = iter(self.retriever.find_batch(valid))
        return [_candidates_response(d if isinstance(d, PipelineError) else next(answers)) for d in decoded]

    def _decode(self, request: pb_utils.InferenceRequest) -> CandidateRequest | PipelineError:
        try:
            raw = {name: triton.text_input(request, name) for name in TEXT_FIELDS}
            return self.requests.decode(raw, triton.int_input(request, TOP_K_INPUT, self.requests.default_top_k))
        except PipelineError as error:
            return error


def _candidates_response(answer: CategoryCandidates | PipelineError) -> pb_utils.InferenceResponse:
    if isinstance(answer, PipelineError):
        return triton.error_response(answer)
    return pb_utils.InferenceResponse([triton.text_tensor(CANDIDATES_OUTPUT, answer.to_json(), batch_of_one=True)])


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


class ProductEmbeddingsModel:
    """The `product_embeddings` model, fed by Triton's dynamic batcher."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = triton.model_parameters(args)
        self.limits = Limits.from_parameters(parameters)
        self.embedder = ProductEmbedder.on_cpu(parameters["text_model"])
        self.models = self.embedder.models_json()

    def execute(self, requests: list[pb_utils.InferenceRequest]) -> list[pb_utils.InferenceResponse]:
        decoded = [self._decode(r) for r in requests]
        valid = [d for d in decoded if not isinstance(d, PipelineError)]
        answers = iter(self.embedder.embed(valid))
        return [
            triton.error_response(d) if isinstance(d, PipelineError) else self._response(next(answers)) for d in decoded
        ]

    def _decode(self, request: pb_utils.InferenceRequest) -> EmbeddingRequest | PipelineError:
        try:
            raw = {name: triton.text_input(request, name) for name in TEXT_FIELDS}
            return embedding_request(raw, triton.bytes_input(request, contract.IMAGE_INPUT_NAME), self.limits)
        except PipelineError as error:
            return error

    def _response(self, vectors: ProductVectors) -> pb_utils.InferenceResponse:
        image = vectors.image if vectors.image is not None else np.empty(0, dtype=np.float32)
        return pb_utils.InferenceResponse(
            [
                pb_utils.Tensor(contract.TEXT_EMBEDDING_OUTPUT, vectors.text[None]),
                pb_utils.Tensor(contract.IMAGE_EMBEDDING_OUTPUT, image[None]),
                triton.text_tensor(contract.EMBEDDING_MODELS_OUTPUT, self.models, batch_of_one=True),
            ]
        )
