"""Is every Python-backend stub of a tritonserver alive?

Triton 2.51 neither restarts a Python-backend stub that died (kill -9, the OOM killer, a crash in a native
library) nor reports it: the model and the server stay `ready`, and each request routed to the dead instance
gets `INTERNAL: Stub process '<instance>' is not healthy.` (measured: README, "When a model process dies").
A server in that state never recovers, so this check sees it instead: the stub processes Triton should run,
from each Python model's resolved config, against those that run. `catalogvlm serve` stops a server that
fails it; in Kubernetes `catalogvlm health` is the container's liveness probe, so the kubelet restarts it.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

STUB_PROCESS_NAME = "triton_python_backend_stub"
# The stub's command line: the stub, its model's <repository>/<model>/<version>/model.py, then Triton's settings.
_MODEL_FILE_ARG = 1


def repository_models(repository: Path) -> list[str]:
    """The models of a Triton model repository: its folders with a config.pbtxt."""
    return sorted(entry.parent.name for entry in Path(repository).glob("*/config.pbtxt"))


def expected_stubs(http_url: str, models: Iterable[str], headers: Mapping[str, str] | None = None) -> Counter[str]:
    """How many stub processes each Python-backend model should have, from the config Triton resolved
    (which lists the GPUs of every KIND_GPU group: one instance per count per GPU)."""
    expected: Counter[str] = Counter()
    for model in models:
        request = urllib.request.Request(f"{http_url}/v2/models/{model}/config", headers=dict(headers or {}))
        with urllib.request.urlopen(request, timeout=5) as response:
            config = json.load(response)
        if config.get("backend") != "python":
            continue
        for group in config.get("instance_group", []):
            devices = len(group.get("gpus") or []) if group.get("kind") == "KIND_GPU" else 1
            expected[model] += int(group.get("count", 1)) * max(devices, 1)
    return expected


def running_stubs(server_pid: int) -> Counter[str]:
    """The live stub processes of the tritonserver with this pid, counted per model."""
    running: Counter[str] = Counter()
    for process in psutil.Process(server_pid).children():
        try:
            if process.name() != STUB_PROCESS_NAME or process.status() == psutil.STATUS_ZOMBIE:
                continue
            running[Path(process.cmdline()[_MODEL_FILE_ARG]).parent.parent.name] += 1
        except (psutil.NoSuchProcess, IndexError):  # ended while we looked, or not a stub after all
            continue
    return running


def missing_stubs(expected: Counter[str], running: Counter[str]) -> list[str]:
    """One line per model with fewer stub processes than it should have."""
    return [
        f"{model}: {running[model]} of {count} Python-backend stub processes running"
        for model, count in sorted(expected.items())
        if running[model] < count
    ]


def tritonserver_pid(repository: Path) -> int | None:
    """The tritonserver process on this machine that serves `repository` (the probe runs beside it)."""
    flag = f"--model-repository={Path(repository)}"
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "tritonserver" and flag in (process.info["cmdline"] or []):
            return process.pid
    return None


def check_local_tritonserver(
    http_url: str, repository: Path, headers: Mapping[str, str] | None = None, ready: bool = False
) -> str | None:
    """What is wrong with this machine's tritonserver (None when nothing is): not running, not ready (when
    `ready` is asked for), or a Python-backend stub missing."""
    pid = tritonserver_pid(repository)
    if pid is None:
        return f"no tritonserver process serves {repository}"
    try:
        if ready:
            urllib.request.urlopen(f"{http_url}/v2/health/ready", timeout=5).close()
        expected = expected_stubs(http_url, repository_models(repository), headers)
    except OSError as error:  # refused, timed out, or an HTTP error status (not ready, model not loaded)
        return f"tritonserver at {http_url} did not answer: {error}"
    return "; ".join(missing_stubs(expected, running_stubs(pid))) or None
