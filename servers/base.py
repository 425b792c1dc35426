"""What every process manager of catalogvlm offers: tritonserver and the Dynamo deployment alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalogvlm.errors import CatalogvlmError


class ServerError(CatalogvlmError):
    """A server could not be prepared or started, or did not become ready."""


@dataclass(frozen=True)
class Ports:
    grpc: int = 8001
    http: int = 8000
    metrics: int = 8002

    def grpc_url(self, host: str) -> str:
        return f"{host}:{self.grpc}"

    def metrics_url(self, host: str) -> str:
        return f"http://{host}:{self.metrics}/metrics"


class Server(Protocol):
    """A serving process (or group of processes) on this machine: started, awaited until ready, stopped."""

    @property
    def grpc_url(self) -> str: ...
    @property
    def metrics_url(self) -> str: ...
    @property
    def pids(self) -> tuple[int, ...]: ...  # the top processes (each with its children)
    def start(self, log_file: Path | None = None) -> None: ...
    def wait_ready(self) -> None: ...
    def exited(self) -> bool: ...
    def stop(self) -> None: ...
