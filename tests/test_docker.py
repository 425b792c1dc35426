"""docker/: what can be checked without a Docker engine or a cluster. Manifests parse and (for built-in kinds)
validate against the Kubernetes schemas; paths, ports, versions and command lines agree with the code.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from catalogvlm.builders.engines import (
    ENGINE_TRITON_IMAGE,
    ENGINE_TRTLLM_RELEASE,
    LLM_API_OPTIONS,
    REPOSITORY,
)
from catalogvlm.builders.llmapi import LLMAPI_MODEL_DIR, MODELOPT_EXAMPLES_DIR, TRITON_LLMAPI_IMAGE
from catalogvlm.builders.repository import GPU_ENGINE_ROOT, GPU_FP8_CHECKPOINT, render_repository
from catalogvlm.cli import build_parser
from catalogvlm.settings import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
K8S_VERSION = "1.33.0"
CUSTOM_KINDS = {"ServiceMonitor", "DynamoGraphDeployment"}  # CRDs: no schema in the Kubernetes release
SERVING_REPOSITORY = f"{GPU_ENGINE_ROOT}/{REPOSITORY}"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s(kind: str) -> list[dict]:
    return [doc for path in sorted((DOCKER / "k8s").glob("*.yaml")) for doc in documents(path) if doc["kind"] == kind]


@pytest.fixture(scope="module")
def serve_ports() -> dict[str, int]:
    args = build_parser().parse_args(["serve"])
    return {"http": args.http_port, "grpc": args.grpc_port, "metrics": args.metrics_port}


def tritonserver_flags(command: list[str]) -> dict[str, str]:
    assert command[0] == "tritonserver"
    return dict(argument.removeprefix("--").split("=", 1) for argument in command[1:])


def test_every_manifest_parses_and_builtin_kinds_match_the_kubernetes_schema():
    paths = [DOCKER / "compose.yaml", *sorted((DOCKER / "k8s").glob("*.yaml"))]
    assert len(paths) >= 5
    for path in paths[1:]:
        for doc in documents(path):
            if doc["kind"] not in CUSTOM_KINDS:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.engine", "Dockerfile.dynamo"])
def test_dockerfiles_copy_what_exists(dockerfile):
    lines = re.findall(r"^COPY (.+)$", (DOCKER / dockerfile).read_text(), flags=re.MULTILINE)
    sources = [source for line in lines for source in line.split()[:-1]]  # the last word is the destination
    shipped = {folder.parent.name for folder in PROJECT_ROOT.glob("*/__init__.py")} - {"tests"}
    assert shipped <= set(sources), f"not copied: {sorted(shipped - set(sources))}"  # `pip install -e .` needs each
    assert {"pyproject.toml", "setup.py"} <= set(sources)
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source


def build_engines_args(*extra: str):
    return build_parser().parse_args(["build-engines", "--hf-model", "m", "--out", "o", *extra])


def test_dockerfile_pins_the_supported_version_set_and_links_nvidias_model():
    text = (DOCKER / "Dockerfile").read_text()
    assert f"ARG TRITON_IMAGE={TRITON_LLMAPI_IMAGE}" in text
    # NVIDIA's llmapi model at the tag of the TensorRT-LLM wheel the image ships, where the repository links it
    assert "import tensorrt_llm; print(tensorrt_llm.__version__)" in text and '--branch "v${TRTLLM_VERSION}"' in text
    assert f"test -f {LLMAPI_MODEL_DIR}/model.py" in text
    assert f"{MODELOPT_EXAMPLES_DIR}/llm_ptq/requirements.txt" in text
    assert build_engines_args().examples is None and build_engines_args().profile == "gpu"  # the image's, per profile
    cmd = re.search(r"^CMD (\[.*?\])\s*$", text, flags=re.MULTILINE | re.DOTALL).group(1)
    flags = tritonserver_flags(yaml.safe_load(cmd.replace("\\\n", "")))
    assert flags["model-repository"] == SERVING_REPOSITORY


def test_legacy_dockerfile_pins_the_engine_version_set():
    text = (DOCKER / "Dockerfile.engine").read_text()
    assert f"ARG TRITON_IMAGE={ENGINE_TRITON_IMAGE}" in text and f"ARG TRTLLM_VERSION={ENGINE_TRTLLM_RELEASE}" in text
    assert "/app/tensorrt_llm" in text and "PR #15907" in text


def test_readme_names_both_version_sets():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert TRITON_LLMAPI_IMAGE in readme and ENGINE_TRITON_IMAGE in readme
    assert ENGINE_TRTLLM_RELEASE.removeprefix("v") in readme and "2026-07-03" in readme


def test_compose_ports_paths_and_commands_agree_with_the_code(serve_ports):
    compose = documents(DOCKER / "compose.yaml")[0]
    services = compose["services"]
    triton = tritonserver_flags(services["triton"]["command"])
    assert triton["model-repository"] == SERVING_REPOSITORY
    assert {name: int(triton[f"{name}-port"]) for name in serve_ports} == serve_ports
    assert sorted(services["triton"]["ports"]) == sorted(f"127.0.0.1:{p}:{p}" for p in serve_ports.values())
    assert services["triton"]["shm_size"] and "v2/health/ready" in " ".join(services["triton"]["healthcheck"]["test"])
    build = shlex.split(services["build-engines"]["command"][-1].split("||")[1])
    assert build_parser().parse_args(build[1:]).out == Path(GPU_ENGINE_ROOT)
    assert f"{SERVING_REPOSITORY}/product_understanding/config.pbtxt" in services["build-engines"]["command"][-1]
    locust = build_parser().parse_args(services["locust"]["command"][1:])
    assert locust.url == f"triton:{serve_ports['grpc']}" and locust.csv and locust.html


def test_deployment_serves_the_built_repository_on_one_gpu(serve_ports):
    (deployment,) = k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags = tritonserver_flags(container["command"])
    assert flags["model-repository"] == SERVING_REPOSITORY
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == serve_ports == {name: int(flags[f"{name}-port"]) for name in serve_ports}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    for probe, extra in (("readinessProbe", ["--ready"]), ("livenessProbe", [])):  # Triton misses a dead stub
        health = build_parser().parse_args(container[probe]["exec"]["command"][1:])
        assert health.command == "health" and str(health.repository) == SERVING_REPOSITORY
        assert health.ready == bool(extra) and health.http_url.endswith(f":{serve_ports['http']}")
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == serve_ports["metrics"]


def test_service_and_metrics_scrape_match_the_pod(serve_ports):
    (service,) = k8s("Service")
    (deployment,) = k8s("Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == serve_ports
    (monitor,) = k8s("ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_engine_job_runs_a_valid_build_engines_command_onto_the_served_volume():
    (job,) = k8s("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["command"][1:])
    assert args.handler.__name__ == "_build_engines" and args.out == Path(GPU_ENGINE_ROOT)
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {c["metadata"]["name"] for c in k8s("PersistentVolumeClaim")}


# --- Dynamo: the DynamoGraphDeployment (a CRD: checked against the code that will run it) ---


def dynamo_flags(module: str) -> set[str]:
    """Flags a Dynamo component declares, read from its installed source (dynamo.trtllm needs TensorRT-LLM to
    import, which this machine does not have)."""
    origin = importlib.util.find_spec(module).origin
    return set(re.findall(r'(?:flag_name=|add_argument\(\s*)"(--[a-z0-9-]+)"', Path(origin).read_text()))


@pytest.fixture(scope="module")
def graph() -> dict:
    (deployment,) = k8s("DynamoGraphDeployment")
    return deployment["spec"]["services"]


def test_dynamo_graph_has_frontend_pipeline_and_gpu_workers(graph, serve_ports):
    assert {name: s["componentType"] for name, s in graph.items()} == {
        "Frontend": "frontend", "CatalogPipeline": "worker", "Qwen2VLWorker": "worker",
    }  # fmt: skip
    frontend = graph["Frontend"]["extraPodSpec"]["mainContainer"]
    assert frontend["command"] == ["python3", "-m", "dynamo.frontend"]
    assert set(a for a in frontend["args"] if a.startswith("--")) <= dynamo_flags("dynamo.frontend.frontend_args")
    assert "--kserve-grpc-server" in frontend["args"]
    assert int(frontend["args"][frontend["args"].index("--http-port") + 1]) == serve_ports["grpc"]
    assert graph["Qwen2VLWorker"]["resources"]["limits"]["gpu"] == "1"


def test_trtllm_workers_take_the_flags_they_are_given(graph):
    worker = graph["Qwen2VLWorker"]["extraPodSpec"]["mainContainer"]
    assert worker["command"] == ["python3", "-m", "dynamo.trtllm"]
    known = dynamo_flags("dynamo.trtllm.backend_args") | dynamo_flags("dynamo.common.configuration.groups.runtime_args")
    used = {a for a in worker["args"] if a.startswith("--")}
    assert used <= known, used - known
    assert {"--enable-multimodal", "--publish-kv-events"} <= used


def test_dynamo_workers_and_triton_serve_one_build_engines_output(graph):
    """One `build-engines` run (the Job, on the engines volume) serves both routes: the trtllm workers load its FP8
    export and its LLM API options file, the same options the gpu repository's model.yaml carries."""
    args = graph["Qwen2VLWorker"]["extraPodSpec"]["mainContainer"]["args"]
    (job,) = k8s("Job")
    built = build_parser().parse_args(job["spec"]["template"]["spec"]["containers"][0]["command"][1:])
    assert built.profile == "gpu" and str(built.out) == GPU_ENGINE_ROOT
    assert args[args.index("--model") + 1] == f"{GPU_ENGINE_ROOT}/{GPU_FP8_CHECKPOINT}"
    assert args[args.index("--extra-engine-args") + 1] == f"{GPU_ENGINE_ROOT}/{LLM_API_OPTIONS}"
    volumes = graph["Qwen2VLWorker"]["extraPodSpec"]["volumes"]
    assert {v["persistentVolumeClaim"]["claimName"] for v in volumes} == {"catalogvlm-engines"}
    assert not k8s("ConfigMap")  # no second copy of the options to drift


def test_pipeline_worker_command_parses_and_points_at_the_trtllm_workers(
    graph, tmp_path, taxonomy_path, qwen_tokenizer_dir
):
    from catalogvlm.servers.dynamo_worker.args import parse_args

    container = graph["CatalogPipeline"]["extraPodSpec"]["mainContainer"]
    cache, render, worker = container["args"][0].split("&&")
    cache_args = build_parser().parse_args(shlex.split(cache)[1:])
    render_args = build_parser().parse_args(shlex.split(render)[1:])
    assert render_args.profile == "gpu"
    # category_candidates reads the embeddings the pod built first
    assert f"embeddings_dir={cache_args.out}" in render_args.values
    command = shlex.split(worker)
    assert command[:4] == ["exec", "python3", "-m", "catalogvlm.servers.dynamo_worker"]
    worker_args = command[4:]
    render_repository("gpu", tmp_path, {"taxonomy_dir": str(taxonomy_path)})
    substitutions = {
        str(render_args.out): str(tmp_path),
        f"{GPU_ENGINE_ROOT}/{GPU_FP8_CHECKPOINT}": str(qwen_tokenizer_dir),  # the export carries the tokenizer
    }
    config = parse_args([substitutions.get(argument, argument) for argument in worker_args])
    trtllm = graph["Qwen2VLWorker"]["extraPodSpec"]["mainContainer"]["args"]
    assert config.engine == "trtllm"
    assert f"dyn://{config.trtllm_endpoint}" == trtllm[trtllm.index("--endpoint") + 1]
    assert config.trtllm_model == trtllm[trtllm.index("--served-model-name") + 1]
    assert config.namespace == config.trtllm_endpoint.split(".")[0]


def test_triton_pod_runs_unprivileged_and_only_labelled_clients_reach_grpc():
    (deployment,) = k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/dev/shm"}
    (policy,) = k8s("NetworkPolicy")
    grpc_rule = next(rule for rule in policy["spec"]["ingress"] if rule["ports"][0]["port"] == 8001)
    assert grpc_rule["from"][0]["podSelector"]["matchLabels"] == {"catalogvlm.io/client": "true"}
    assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]
