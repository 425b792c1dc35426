"""Registers product_understanding and taxonomy_validate with Dynamo as tensor-based models (as dynamo.triton
does: ModelInput.Tensor, ModelType.TensorBased, the Triton ModelConfig attached) and serves them with the
same pipeline services as the Triton models. The engine behind both stages is the CPU engine in this process
(`--engine cpu`) or dynamo.trtllm workers reached through a KV-aware router (`--engine trtllm`)."""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tritonclient.grpc.model_config_pb2 as mc
import uvloop
from dynamo.common.utils.graceful_shutdown import install_signal_handlers
from dynamo.common.utils.runtime import create_runtime
from dynamo.llm import ModelInput, ModelType, WorkerType, register_model
from dynamo.triton.health_check import TritonHealthCheckPayload
from dynamo.triton.util import endpoint_slug
from google.protobuf import text_format

from catalogvlm.pipeline.adapters import dynamo as adapters
from catalogvlm.pipeline.adapters.dynamo_trtllm import TrtllmRoute, TrtllmVlmEngine
from catalogvlm.pipeline.chain import VlmEngine
from catalogvlm.pipeline.cpu import CpuVlmEngine
from catalogvlm.pipeline.service import ProductUnderstandingService, TaxonomyValidationService

from .args import ENGINE_MODEL, WorkerConfig, parse_args

log = logging.getLogger("catalogvlm.servers.dynamo_worker")


def read_model_config(repository: Path, model: str) -> mc.ModelConfig:
    return text_format.Parse((repository / model / "config.pbtxt").read_text(encoding="utf-8"), mc.ModelConfig())


def parameters(config: mc.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


async def connect_engine(runtime, config: WorkerConfig) -> VlmEngine:
    if config.engine == "trtllm":
        route = TrtllmRoute(config.trtllm_endpoint, config.trtllm_model, config.tokenizer_dir, config.kv_block_size)
        return await TrtllmVlmEngine.connect(runtime, route)
    engine_parameters = parameters(read_model_config(config.repository, ENGINE_MODEL))
    return await asyncio.to_thread(CpuVlmEngine.from_parameters, engine_parameters)


def build_models(config: WorkerConfig, engine: VlmEngine) -> list[adapters.TensorModel]:
    pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="catalogvlm")
    understanding = read_model_config(config.repository, "product_understanding")
    validate = read_model_config(config.repository, "taxonomy_validate")
    return [
        adapters.product_understanding(
            understanding, ProductUnderstandingService(parameters(understanding), engine), pool
        ),
        adapters.taxonomy_validate(validate, TaxonomyValidationService(parameters(validate)), pool),
    ]


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
    engine = await connect_engine(runtime, config)
    models = await asyncio.to_thread(build_models, config, engine)
    async with asyncio.TaskGroup() as tasks:
        for model in models:
            tasks.create_task(serve_model(runtime, config, model, endpoints), name=f"catalogvlm/{model.name}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(worker(parse_args(sys.argv[1:])))
