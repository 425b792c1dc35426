"""The Dynamo GPU route on the CPU: our `vlm` engine talks, through Dynamo's runtime and KV-aware router, to a
real Dynamo worker process. The worker is Dynamo's `mocker` (its engine simulator: the same request and
response protocol, KV-cache events and prefix caching as `dynamo.trtllm`, tokens without a model), so what is
tested is the route (request format, streaming, KV-aware routing, usage accounting), not generation quality.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time

import images
import pytest

from catalogvlm.bench.corpora import QWEN2VL_7B_CONFIG
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.adapters.dynamo_trtllm import TrtllmRoute, TrtllmVlmEngine
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.errors import EngineError
from catalogvlm.pipeline.images import data_url
from catalogvlm.pipeline.prompts import category_prompt

CHECKPOINT = QWEN2VL_7B_CONFIG
ENDPOINT = "catalogvlm-test.tensorrt_llm.generate"
LOOPBACK = ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST", "DYN_SYSTEM_HOST")


@pytest.fixture(scope="module")
def route(tmp_path_factory, qwen_tokenizer_dir):
    from dynamo.common.utils.runtime import create_runtime

    root = tmp_path_factory.mktemp("trtllm-route")
    model = root / "Qwen2-VL-7B-Instruct"
    shutil.copytree(qwen_tokenizer_dir, model)
    shutil.copy(CHECKPOINT / "config.json", model)
    environment = {"DYN_FILE_KV": str(root / "discovery"), "DYN_LOG": "warn", **dict.fromkeys(LOOPBACK, "127.0.0.1")}
    worker_command = [sys.executable, "-m", "dynamo.mocker", "--model-path", str(model), "--model-name", "qwen2-vl",
                      "--endpoint", f"dyn://{ENDPOINT}", "--discovery-backend", "file", "--block-size", "32",
                      "--speedup-ratio", "100"]  # fmt: skip
    log = (root / "worker.log").open("wb")
    worker = subprocess.Popen(worker_command, env={**os.environ, **environment}, stdout=log, stderr=subprocess.STDOUT)
    patch = pytest.MonkeyPatch()
    for variable, value in environment.items():
        patch.setenv(variable, value)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="dynamo-runtime").start()

    async def connect():
        runtime, _ = create_runtime(discovery_backend="file", request_plane="tcp")
        return runtime, await TrtllmVlmEngine.connect(runtime, TrtllmRoute(ENDPOINT, "qwen2-vl", model, 32, 20.0))

    runtime, engine = asyncio.run_coroutine_threadsafe(connect(), loop).result(60)
    try:
        on_loop = _OnLoop(engine, loop)
        _wait_for_worker(on_loop)
        yield on_loop
    finally:
        loop.call_soon_threadsafe(runtime.shutdown)
        worker.terminate()
        worker.wait(30)
        patch.undo()
        print((root / "worker.log").read_text(errors="replace")[-2_000:])


class _OnLoop:
    """The engine's coroutines run on the Dynamo runtime's loop; a test waits for their answers."""

    def __init__(self, engine: TrtllmVlmEngine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self._loop = loop

    def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        return asyncio.run_coroutine_threadsafe(self.engine.generate(prompt, image, max_tokens), self._loop).result(60)


def _wait_for_worker(engine: _OnLoop, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            engine.generate("<|im_start|>user\nready?<|im_end|>\n", None, 1)
            return
        except EngineError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_stage_prompt_with_image_streams_back_through_the_kv_router(route):
    before = route.engine.kv_reuse.prompt_tokens
    product = Product(title="Merino wool beanie", image=images.product_photo())
    answer = route.generate(category_prompt(product), product.image, 12)
    assert isinstance(answer, str) and answer  # the mocker's tokens, decoded with the checkpoint's tokenizer
    prompt_tokens = len(route.engine._tokenizer.encode(category_prompt(product), add_special_tokens=False).ids)
    assert route.engine.kv_reuse.prompt_tokens - before == prompt_tokens


def test_shared_instruction_prefix_is_served_from_cache(route):
    route.generate(category_prompt(Product(title="Trail running shoe")), None, 4)
    cached_before = route.engine.kv_reuse.cached_tokens
    route.generate(category_prompt(Product(title="Cast iron skillet, 26 cm")), None, 4)
    # different products, same ~300 instruction tokens first: at least 8 full 32-token blocks come from cache
    assert route.engine.kv_reuse.cached_tokens - cached_before >= 8 * 32


def test_images_travel_as_data_urls():
    photo = images.product_photo(fmt="PNG")
    assert data_url(photo).startswith("data:image/png;base64,iVBOR")
    assert data_url(images.product_photo()).startswith("data:image/jpeg;base64,")


def test_worker_configuration_of_the_gpu_route(tmp_path, taxonomy_path, qwen_tokenizer_dir):
    from catalogvlm.builders.repository import render_repository
    from catalogvlm.servers.dynamo_worker.args import parse_args

    render_repository("gpu", tmp_path, {"taxonomy_dir": str(taxonomy_path)})  # no `vlm` engine config needed
    base = ["--repository", str(tmp_path), "--engine", "trtllm"]
    with pytest.raises(ConfigurationError, match="needs --tokenizer-dir"):
        parse_args(base)
    with pytest.raises(ConfigurationError, match=r"namespace\.component\.endpoint"):
        parse_args([*base, "--tokenizer-dir", str(qwen_tokenizer_dir), "--trtllm-endpoint", "generate"])
    config = parse_args([*base, "--tokenizer-dir", str(qwen_tokenizer_dir)])
    assert config.trtllm_endpoint == "dynamo.backend.generate"  # dynamo.trtllm's own default
