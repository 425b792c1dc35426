"""Registers the repository's pipeline models (product_understanding, taxonomy_validate, category_candidates and
any variants) with Dynamo as tensor-based models (as dynamo.triton does: ModelInput.Tensor, ModelType.TensorBased,
the Triton ModelConfig attached) and serves them with the same pipeline services as the Triton models, on this
process's event loop. The engine behind both stages is the repository's engine model run in this process
behind a micro-batcher (`--engine cpu`) or dynamo.trtllm workers reached through a KV-aware router
(`--engine trtllm`); retrieval's candidates come from the repository's category_candidates model, run in this
process behind a micro-batcher in either case."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvloop
from dynamo.common.utils.graceful_shutdown import install_signal_handlers
from dynamo.common.utils.runtime import create_runtime
from dynamo.llm import ModelInput, ModelType, WorkerType, register_model
from dynamo.triton.health_check import TritonHealthCheckPayload
from dynamo.triton.util import endpoint_slug

from catalogvlm.pipeline.adapters import dynamo as adapters
from catalogvlm.pipeline.adapters.dynamo_trtllm import TrtllmRoute, TrtllmVlmEngine
from catalogvlm.pipeline.candidates import BatchedCandidateSource, CandidateSource
from catalogvlm.pipeline.contract import CANDIDATES_MODEL
from catalogvlm.pipeline.cpu.retrieval import CategoryRetriever
from catalogvlm.pipeline.engines import OVERLAPPING_BATCHES_PARAMETER, BatchedVlmEngine, VlmEngine, load_engine
from catalogvlm.pipeline.service import (
    CANDIDATES_MODEL_PARAMETER,
    CandidateRequests,
    ProductUnderstandingService,
    TaxonomyValidationService,
)

from .args import WorkerConfig, parse_args
from .repository import CATEGORY_CANDIDATES, PRODUCT_UNDERSTANDING, RepositoryModel, read_model, served_models

log = logging.getLogger("catalogvlm.servers.dynamo_worker")


class Engines:
    """One engine per engine model the pipeline models name (built once, shared), or the TRT-LLM route; one
    candidate source per category_candidates model they name."""

    def __init__(self, config: WorkerConfig, trtllm: VlmEngine | None) -> None:
        self._config = config
        self._trtllm = trtllm
        self._built: dict[str, VlmEngine] = {}
        self._candidates: dict[str, CandidateSource] = {}

    def for_model(self, model: RepositoryModel) -> VlmEngine:
        if self._trtllm is not None:
            return self._trtllm
        name = model.parameters["vlm_model_name"]
        if name not in self._built:
            engine_model = read_model(self._config.repository, name)
            engine = load_engine(engine_model.parameters, model_dir=self._config.repository / name / "1")
            self._built[name] = BatchedVlmEngine(engine, *_batching(engine_model))
        return self._built[name]

    def candidates_for(self, model: RepositoryModel) -> CandidateSource:
        """The category_candidates model the pipeline model names."""
        return self.candidates_named(model.parameters.get(CANDIDATES_MODEL_PARAMETER, CANDIDATES_MODEL))

    def candidates_named(self, name: str) -> CandidateSource:
        """A category_candidates model run in this process (on the CPU, as in Triton), built once."""
        if name not in self._candidates:
            candidates_model = read_model(self._config.repository, name)
            retriever = CategoryRetriever.from_parameters(candidates_model.parameters)
            self._candidates[name] = BatchedCandidateSource(retriever.find_batch, *_batching(candidates_model))
        return self._candidates[name]


def _batching(model: RepositoryModel) -> tuple[int, float, int]:
    """(max batch size, max delay in s, batches at once) as the model's Triton config batches it."""
    config = model.config
    delay_s = config.dynamic_batching.max_queue_delay_microseconds / 1e6
    instances = sum(group.count for group in config.instance_group) or 1
    overlapping = int(model.parameters.get(OVERLAPPING_BATCHES_PARAMETER, "1"))
    return config.max_batch_size, delay_s, instances * overlapping


def build_models(config: WorkerConfig, engines: Engines) -> list[adapters.TensorModel]:
    models = []
    for model in served_models(config.repository):
        if model.service == PRODUCT_UNDERSTANDING:
            service = ProductUnderstandingService(
                model.parameters, engines.for_model(model), engines.candidates_for(model)
            )
            models.append(adapters.product_understanding(model.config, service))
        elif model.service == CATEGORY_CANDIDATES:
            source = engines.candidates_named(model.name)
            models.append(adapters.category_candidates(model.config, source, CandidateRequests(model.parameters)))
        else:
            models.append(adapters.taxonomy_validate(model.config, TaxonomyValidationService(model.parameters)))
    return models


async def serve_model(runtime, config: WorkerConfig, model: adapters.TensorModel, endpoints: list) -> None:
    endpoint = runtime.endpoint(f"{config.namespace}.{config.component}.{endpoint_slug(model.name)}")
    endpoints.append(endpoint)
    await register_model(
        ModelInput.Tensor,
        ModelType.TensorBased,
        endpoint,
        model.name,
        worker_type=WorkerType.Aggregated,
        tensor_model_config={
            "name": "", "inputs": [], "outputs": [], "triton_model_config": model.config.SerializeToString(),
        },
    )  # fmt: skip
    log.info("registered %s", model.name)
    await endpoint.serve_endpoint(model.generate, health_check_payload=TritonHealthCheckPayload(model.name).to_dict())


async def worker(config: WorkerConfig) -> None:
    runtime, loop = create_runtime(discovery_backend=config.discovery_backend, request_plane=config.request_plane)
    endpoints: list = []
    install_signal_handlers(loop, runtime, endpoints)
    trtllm = None
    if config.engine == "trtllm":
        route = TrtllmRoute(config.trtllm_endpoint, config.trtllm_model, config.tokenizer_dir, config.kv_block_size)
        trtllm = await TrtllmVlmEngine.connect(runtime, route)
    # Loading taxonomies and engine weights takes seconds: off the loop that talks to Dynamo.
    models = await asyncio.to_thread(build_models, config, Engines(config, trtllm))
    async with asyncio.TaskGroup() as tasks:
        for model in models:
            tasks.create_task(serve_model(runtime, config, model, endpoints), name=f"catalogvlm/{model.name}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(worker(parse_args(sys.argv[1:])))
