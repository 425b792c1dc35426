"""`catalogvlm serve`: render the model repository for a profile and serve it until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from catalogvlm.builders.repository import parse_assignments
from catalogvlm.pipeline.contract import ADMIN_KEY_HEADER, API_KEY_HEADER

from .base import Ports, ServerSecurity
from .health import check_local_tritonserver
from .serve import served, supervise


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
    security = parser.add_argument_group("security (Triton's own gRPC TLS options and restricted protocols)")
    security.add_argument("--tls-cert", type=Path, help="PEM server certificate: gRPC over TLS")
    security.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    security.add_argument("--tls-ca", type=Path, help="PEM CA that client certificates must chain to (mutual TLS)")
    security.add_argument(
        "--admin-key",
        default=os.environ.get("CATALOGVLM_ADMIN_KEY"),
        help="model repository, shared memory, statistics, trace and logging need gRPC metadata"
        f" {ADMIN_KEY_HEADER}: KEY (env: CATALOGVLM_ADMIN_KEY)",
    )
    security.add_argument(
        "--api-key",
        default=os.environ.get("CATALOGVLM_API_KEY"),
        help=f"inference needs gRPC metadata {API_KEY_HEADER}: KEY (env: CATALOGVLM_API_KEY)",
    )
    parser.set_defaults(handler=_serve)

    probe = subcommands.add_parser(
        "health",
        help="exit 0 when this machine's tritonserver runs every Python-backend stub it should (a Kubernetes"
        " exec probe: Triton 2.51 stays ready with a dead stub)",
    )
    probe.add_argument("--repository", type=Path, required=True, help="the model repository tritonserver serves")
    probe.add_argument("--http-url", default="http://127.0.0.1:8000", help="tritonserver's HTTP endpoint")
    probe.add_argument("--ready", action="store_true", help="also require /v2/health/ready (a readiness probe)")
    probe.add_argument(
        "--api-key",
        default=os.environ.get("CATALOGVLM_API_KEY"),
        help="when model config is restricted (serve --api-key; env: CATALOGVLM_API_KEY)",
    )
    probe.set_defaults(handler=_health)


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
        security=ServerSecurity(args.tls_cert, args.tls_key, args.tls_ca, args.admin_key, args.api_key),
    ) as server:
        print(
            f"catalogvlm: profile {args.profile} ({args.backend}) ready on gRPC {server.grpc_url} "
            f"(metrics {server.metrics_url}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        if failure := supervise(server, stop):
            print(f"catalogvlm: {failure}; the server was stopped", file=sys.stderr, flush=True)
            return 1
    return 0


def _health(args: argparse.Namespace) -> int:
    headers = ServerSecurity(api_key=args.api_key).headers
    problem = check_local_tritonserver(args.http_url.rstrip("/"), args.repository, headers, ready=args.ready)
    print(f"catalogvlm health: {problem or 'ok'}", file=sys.stderr if problem else sys.stdout)
    return 1 if problem else 0
