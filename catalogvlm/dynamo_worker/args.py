"""Worker configuration: one typed object, every flag also an environment variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SERVED_MODELS = ("product_understanding", "taxonomy_validate")
ENGINE_MODEL = "vlm"


@dataclass(frozen=True)
class WorkerConfig:
    repository: Path  # a rendered CPU-profile model repository: the models' contracts and parameters
    namespace: str = "catalogvlm"
    component: str = "pipeline"
    discovery_backend: str = "file"
    request_plane: str = "tcp"
    threads: int = 4

    def validate(self) -> WorkerConfig:
        missing = [m for m in (*SERVED_MODELS, ENGINE_MODEL) if not (self.repository / m / "config.pbtxt").is_file()]
        if missing:
            raise ValueError(f"{self.repository} is not a rendered catalogvlm repository: no {', '.join(missing)}")
        if self.threads < 1:
            raise ValueError("--threads must be at least 1")
        return self


def parse_args(argv: Sequence[str]) -> WorkerConfig:
    parser = argparse.ArgumentParser(prog="python -m catalogvlm.dynamo_worker", description=__doc__)

    def option(flag: str, variable: str, default: object, **kwargs: object) -> None:
        parser.add_argument(flag, default=os.environ.get(variable, default), help=f"env: {variable}", **kwargs)

    option("--repository", "CATALOGVLM_REPOSITORY", None, type=Path)
    option("--namespace", "CATALOGVLM_DYNAMO_NAMESPACE", "catalogvlm")
    option("--component", "CATALOGVLM_DYNAMO_COMPONENT", "pipeline")
    option("--discovery-backend", "DYN_DISCOVERY_BACKEND", "file", choices=["file", "etcd", "kubernetes", "mem"])
    option("--request-plane", "DYN_REQUEST_PLANE", "tcp", choices=["tcp", "nats"])
    option("--threads", "CATALOGVLM_DYNAMO_THREADS", 4, type=int)
    args = parser.parse_args(argv)
    if args.repository is None:
        parser.error("--repository (or CATALOGVLM_REPOSITORY) is required")
    return WorkerConfig(
        Path(args.repository), args.namespace, args.component, args.discovery_backend, args.request_plane,
        int(args.threads),
    ).validate()  # fmt: skip
