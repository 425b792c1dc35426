"""What answers the `vlm` contract, seen from the chain (awaited, one prompt at a time) and from an engine
model (a batch at a time), and the bridge between the two for processes without Triton's batcher.

- `VlmEngine`: the chain awaits `generate` for each stage; many products are in flight at once, so an
  implementation never blocks the event loop (a BLS call, a Dynamo router call, a `BatchedVlmEngine`).
- `BatchEngine`: an engine that answers a whole batch in one pass (the CPU engine embeds every prompt of a
  batch at once; the benchmark's fixed-latency stand-in takes the same time for any batch). Triton serves
  it behind its dynamic batcher; the Dynamo worker behind a `MicroBatcher` configured the same way
  (`BatchedVlmEngine`).
- Which `BatchEngine` a model serves is its config's `engine_factory` parameter (`module:callable`), so the
  Triton model and the Dynamo worker build it from the same repository.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from catalogvlm.errors import ConfigurationError

from .errors import EngineError, PipelineError

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class VlmEngine(Protocol):
    """The `vlm` contract as the chain awaits it: a full chat prompt and an optional encoded image in,
    generated text out; failures raise EngineError (retried) or InvalidInput."""

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str: ...


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    image: bytes | None = field(default=None, repr=False)
    max_tokens: int = 512


# One answer per request, in order: the text, or the error of that request alone.
BatchAnswers = list[str | PipelineError]


class BatchEngine(Protocol):
    def generate_batch(self, requests: Sequence[GenerationRequest]) -> BatchAnswers: ...


ENGINE_FACTORY_PARAMETER = "engine_factory"
# Batches one engine instance runs at once (default 1): an in-flight-batching engine starts the next batch while
# earlier ones run (Triton's OverlappingEngineModel; the Dynamo worker's BatchedVlmEngine).
OVERLAPPING_BATCHES_PARAMETER = "overlapping_batches"


def load_engine(parameters: Mapping[str, str], model_dir: Path | None = None) -> BatchEngine:
    """The engine a model's config names in `engine_factory` (`package.module:callable`), built from the
    same parameters. A module may ship beside the model's model.py: Triton puts that folder on the import
    path, and so does this function when given `model_dir` (the Dynamo worker does)."""
    if model_dir is not None and str(model_dir) not in sys.path:
        sys.path.insert(0, str(model_dir))
    spec = parameters.get(ENGINE_FACTORY_PARAMETER, "")
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{ENGINE_FACTORY_PARAMETER} must be 'package.module:callable', got {spec!r}")
    try:
        factory = importlib.import_module(module_name)
        for name in attribute.split("."):
            factory = getattr(factory, name)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"{ENGINE_FACTORY_PARAMETER} {spec!r} cannot be loaded: {error}") from error
    return factory(parameters)


def answer_batch(engine: BatchEngine, requests: Sequence[GenerationRequest]) -> BatchAnswers:
    """The engine's answers; when it fails as a whole, every request of the batch learns why (retryable)."""
    try:
        return engine.generate_batch(requests) if requests else []
    except Exception as error:
        return [EngineError(f"engine failed: {type(error).__name__}: {error}")] * len(requests)


class MicroBatcher(Generic[Request, Answer]):
    """Batches awaited requests for a function that answers a batch in one pass, as Triton's dynamic batcher
    would for a model with `instances` instances: requests that arrive while batches run, or within
    `max_delay_s`, form the next batch (at most `max_batch_size`); up to `instances` batches run at once, each
    on a worker thread. The event loop never waits for the batch function, which answers each request in
    order with its answer or its own error."""

    def __init__(
        self,
        answer: Callable[[Sequence[Request]], Sequence[Answer | PipelineError]],
        max_batch_size: int,
        max_delay_s: float,
        instances: int = 1,
    ) -> None:
        self._answer = answer
        self._max_batch_size = max(1, max_batch_size)
        self._max_delay_s = max_delay_s
        self._instances = max(1, instances)
        self._pending: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._free: asyncio.Semaphore | None = None  # created on the loop that uses it
        self._threads = ThreadPoolExecutor(max_workers=self._instances, thread_name_prefix="catalogvlm-batch")

    async def submit(self, request: Request) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="catalogvlm/micro-batcher")
        return await future

    async def _drain(self) -> None:
        self._free = self._free or asyncio.Semaphore(self._instances)
        while self._pending:
            if len(self._pending) < self._max_batch_size and self._max_delay_s > 0:
                await asyncio.sleep(self._max_delay_s)
            await self._free.acquire()
            batch = self._pending[: self._max_batch_size]
            del self._pending[: len(batch)]
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[Request, asyncio.Future[Answer]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self._threads, self._answer, [r for r, _ in batch])
        finally:
            self._free.release()  # type: ignore[union-attr]
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # its caller gave up (deadline, shutdown)
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)


class BatchedVlmEngine:
    """A `VlmEngine` over a `BatchEngine` in this process (no Triton batcher): a `MicroBatcher` configured as
    the engine model's Triton config would batch it."""

    def __init__(self, engine: BatchEngine, max_batch_size: int, max_delay_s: float, instances: int = 1) -> None:
        self._batcher: MicroBatcher[GenerationRequest, str] = MicroBatcher(
            lambda requests: answer_batch(engine, requests), max_batch_size, max_delay_s, instances
        )

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        return await self._batcher.submit(GenerationRequest(prompt, image, max_tokens))
