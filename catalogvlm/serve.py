"""`catalogvlm serve`: render the model repository for a profile and run tritonserver on it."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from catalogvlm.builders.repository import ServedModel, parse_assignments, render_repository
from catalogvlm.dynamo_worker.launch import DynamoDeployment
from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.settings import CACHE_ROOT, EMBEDDINGS_DIR, taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy
from catalogvlm.triton_server import Ports, TritonServer, TritonServerConfig, prepare_installation

log = logging.getLogger(__name__)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("serve", help="run the service on a real Triton server (Ctrl-C stops it)")
    parser.add_argument("--profile", choices=["cpu"], default="cpu")
    parser.add_argument(
        "--backend",
        choices=["triton", "dynamo"],
        default="triton",
        help="tritonserver, or Dynamo's frontend (KServe gRPC) with our worker",
    )
    parser.add_argument("--repository", type=Path, help="where to render the model repository")
    parser.add_argument("--taxonomy", metavar="DIR")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model repository value (e.g. bls_instances=8)",
    )
    parser.add_argument("--log-verbose", type=int, default=0, help="tritonserver --log-verbose level")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    ports = Ports(grpc=args.grpc_port, http=args.http_port, metrics=args.metrics_port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with served(
        args.profile,
        backend=args.backend,
        ports=ports,
        host=args.host,
        repository=args.repository,
        taxonomy=args.taxonomy,
        values=parse_assignments(args.values),
        log_verbose=args.log_verbose,
    ) as server:
        print(
            f"catalogvlm: profile {args.profile} ({args.backend}) ready on gRPC {server.grpc_url} "
            f"(metrics {server.metrics_url}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if server.exited():
                print("catalogvlm: tritonserver exited", file=sys.stderr)
                return 1
    return 0


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
) -> Iterator[TritonServer]:
    """A ready server for `profile` (tritonserver, or Dynamo's frontend with our worker), stopped on exit."""
    repository = repository or CACHE_ROOT / f"repository-{profile}"
    taxonomy_path = taxonomy_dir(taxonomy)
    embeddings = CategoryEmbeddingCache(taxonomy_path, EMBEDDINGS_DIR)
    if not embeddings.path.is_file():
        embeddings.build(load_taxonomy(taxonomy_path))
    values = {"taxonomy_dir": str(taxonomy_path), "embeddings_dir": str(EMBEDDINGS_DIR), **(values or {})}
    rendered = render_repository(profile, repository, values, extra_models)
    ports = ports or free_ports()
    if backend == "dynamo":
        server: TritonServer | DynamoDeployment = DynamoDeployment(rendered.path, ports, host=host)
    else:
        config = TritonServerConfig(rendered.path, ports, host=host, log_verbose=log_verbose)
        server = TritonServer(config, prepare_installation())
    server.start(log_file)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


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
