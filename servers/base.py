"""What every process manager of catalogvlm offers: tritonserver and the Dynamo deployment alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalogvlm.errors import CatalogvlmError, ConfigurationError
from catalogvlm.pipeline.contract import ADMIN_KEY_NAME, API_KEY_NAME

# Triton's restricted protocol groups: what only an operator may call, and what a calling service needs. A
# caller reads a model's config too: perf_analyzer does before its first request, and the bulk pipeline reads
# the taxonomy release and catalogvlm version it fingerprints products with.
ADMIN_PROTOCOLS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
INFERENCE_PROTOCOLS = ("inference", "model-config")


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


@dataclass(frozen=True)
class ServerSecurity:
    """TLS for gRPC (mutual when a client CA is given) and header keys for Triton's restricted protocols.

    Health and metadata stay open, so load balancers and Kubernetes probes need no key. Triton takes the keys
    on its command line, where other users of the machine can read them: run it where only the operator can.
    """

    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # clients must present a certificate signed by it (mutual TLS)
    admin_key: str | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        if self.tls_ca and not self.tls_cert:
            raise ConfigurationError("--tls-ca (mutual TLS) needs --tls-cert and --tls-key")
        for path in (self.tls_cert, self.tls_key, self.tls_ca):
            if path and not Path(path).is_file():
                raise ConfigurationError(f"{path} does not exist")

    @property
    def headers(self) -> dict[str, str]:
        """What a caller of Triton's HTTP model-config and inference APIs sends (the header is the key's name)."""
        return {API_KEY_NAME: self.api_key} if self.api_key else {}

    @property
    def enabled(self) -> bool:
        return bool(self.tls_cert or self.admin_key or self.api_key)

    def triton_args(self) -> list[str]:
        args = []
        if self.tls_cert:
            args += ["--grpc-use-ssl=true", f"--grpc-server-cert={self.tls_cert}", f"--grpc-server-key={self.tls_key}"]
        if self.tls_ca:
            args += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.tls_ca}"]
        for protocols, header, key in (
            (ADMIN_PROTOCOLS, ADMIN_KEY_NAME, self.admin_key),
            (INFERENCE_PROTOCOLS, API_KEY_NAME, self.api_key),
        ):
            if key:
                restriction = f"{','.join(protocols)}:{header}={key}"
                args += [f"--grpc-restricted-protocol={restriction}", f"--http-restricted-api={restriction}"]
        return args


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
    def failure(self) -> str | None: ...  # why a ready server can no longer serve, or None while it can
    def stop(self, timeout_s: float = 30.0) -> None: ...  # products in flight get timeout_s to finish
