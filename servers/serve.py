"""A ready server for a profile: the model repository rendered, tritonserver or Dynamo started, stopped on exit."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from catalogvlm.builders.repository import ServedModel, python_thread_pool_size, render_repository
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.cpu.embeddings import build_category_vectors
from catalogvlm.settings import CACHE_ROOT, EMBEDDINGS_DIR, taxonomy_dir

from .base import Ports, Server, ServerSecurity
from .dynamo import DynamoDeployment
from .triton import TritonServer, TritonServerConfig, prepare_installation


@contextmanager
def served(
    profile: str = "cpu",
    *,
    backend: str = "triton",
    ports: Ports | None = None,
    host: str = "127.0.0.1",
    repository: Path | None = None,
    taxonomy: str | None = None,
    values: Mapping[str, str] | None = None,
    log_verbose: int = 0,
    log_file: Path | None = None,
    extra_models: tuple[ServedModel, ...] = (),
    security: ServerSecurity | None = None,
) -> Iterator[Server]:
    """A ready server for `profile` (tritonserver, or Dynamo's frontend with our worker), stopped on exit."""
    repository = repository or CACHE_ROOT / f"repository-{profile}"
    taxonomy_path = taxonomy_dir(taxonomy)
    build_category_vectors(taxonomy_path, EMBEDDINGS_DIR)  # once per taxonomy release; later starts reuse them
    values = {"taxonomy_dir": str(taxonomy_path), "embeddings_dir": str(EMBEDDINGS_DIR), **(values or {})}
    rendered = render_repository(profile, repository, values, extra_models)
    ports = ports or free_ports()
    security = security or ServerSecurity()
    if backend == "dynamo":
        if security.enabled:  # not verified on Dynamo 1.6.1's KServe gRPC frontend: refuse rather than serve open
            raise ConfigurationError("TLS and keys are Triton's options; put Dynamo's frontend behind your own TLS")
        server: Server = DynamoDeployment(rendered.path, ports, host=host)
    else:
        config = TritonServerConfig(
            rendered.path,
            ports,
            host=host,
            log_verbose=log_verbose,
            python_thread_pool_size=python_thread_pool_size(rendered.values),
            security=security,
        )
        server = TritonServer(config, prepare_installation())
    server.start(log_file)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# Products carried by a dead process are never answered; a failed server gets this long for the others.
FAILED_SERVER_GRACE_S = 5.0


def supervise(server: Server, stop: threading.Event, poll_s: float = 0.5) -> str | None:
    """Wait until `stop` is set or the server can no longer serve (a process exited, a Triton stub died).
    A failed server is stopped, so its open calls end (UNAVAILABLE: the client retries elsewhere) and a
    process manager (Kubernetes, systemd) starts a fresh one; what failed is returned."""
    while not stop.wait(poll_s):
        if failure := server.failure():
            server.stop(timeout_s=FAILED_SERVER_GRACE_S)
            return failure
    return None


def free_ports() -> Ports:
    """Three currently free loopback ports."""
    sockets = [socket.socket() for _ in range(3)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        grpc, http, metrics = (sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return Ports(grpc=grpc, http=http, metrics=metrics)
