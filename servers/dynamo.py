"""Dynamo's frontend (KServe gRPC) and our worker as one deployment on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tritonclient.grpc as grpcclient

from .base import Ports, ServerError
from .dynamo_worker.repository import served_models

READY_TIMEOUT_S = 240.0
# Dynamo's own planes pick a non-loopback address unless told otherwise.
_HOST_VARIABLES = ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST", "DYN_SYSTEM_HOST")


class DynamoDeployment:
    """`python -m dynamo.frontend --kserve-grpc-server` on `ports.grpc` plus our worker
    (`python -m catalogvlm.servers.dynamo_worker`), sharing a private file-based discovery folder; started,
    awaited until ready, stopped together."""

    def __init__(self, repository: Path, ports: Ports, host: str = "127.0.0.1", namespace: str = "catalogvlm") -> None:
        self._repository = repository
        self._ports = ports
        self._host = host
        self._namespace = namespace
        self._discovery = tempfile.TemporaryDirectory(prefix="catalogvlm-dynamo-")
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def grpc_url(self) -> str:
        return self._ports.grpc_url(self._host)

    @property
    def metrics_url(self) -> str:
        return self._ports.metrics_url(self._host)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(process.pid for process in self._processes)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, DYN_FILE_KV=self._discovery.name, DYN_NAMESPACE=self._namespace)
        env.update({variable: self._host for variable in _HOST_VARIABLES})
        env.setdefault("DYN_LOG", "warn")  # the runtime logs every request at info; an operator's choice wins
        return env

    def commands(self) -> list[list[str]]:
        frontend = [sys.executable, "-m", "dynamo.frontend", "--kserve-grpc-server", "--discovery-backend", "file",
                    "--http-host", self._host, "--http-port", str(self._ports.grpc),
                    "--grpc-metrics-port", str(self._ports.metrics), "--namespace", self._namespace]  # fmt: skip
        worker = [sys.executable, "-m", "catalogvlm.servers.dynamo_worker", "--repository", str(self._repository),
                  "--discovery-backend", "file", "--namespace", self._namespace]  # fmt: skip
        return [frontend, worker]

    def start(self, log_file: Path | None = None) -> None:
        output = log_file.open("ab") if log_file else None
        errors = subprocess.STDOUT if output else None
        for command in self.commands():
            process = subprocess.Popen(
                command, env=self.environment(), stdout=output, stderr=errors, start_new_session=True
            )
            self._processes.append(process)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        expected = [model.name for model in served_models(self._repository)]
        while time.monotonic() < deadline:
            if failure := self.failure():
                raise ServerError(f"{failure} while starting")
            try:
                with grpcclient.InferenceServerClient(self.grpc_url) as client:
                    if all(client.is_model_ready(model) for model in expected):
                        return
            except Exception:
                pass
            time.sleep(0.5)
        raise ServerError(f"Dynamo was not ready after {timeout_s:.0f} s")

    def failure(self) -> str | None:
        for role, process in zip(("frontend", "worker"), self._processes, strict=False):  # as commands() orders them
            if process.poll() is not None:
                return f"the Dynamo {role} exited with code {process.returncode}"
        return None

    def stop(self, timeout_s: float = 30.0) -> None:
        processes, self._processes = self._processes, []
        for process in reversed(processes):  # the worker first, so it unregisters while the frontend still runs
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._discovery.cleanup()
