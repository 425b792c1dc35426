"""Worker configuration: one typed object, every flag also an environment variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from catalogvlm.errors import ConfigurationError

ENGINES = ("cpu", "trtllm")


@dataclass(frozen=True)
class WorkerConfig:
    repository: Path  # a rendered model repository: the models' contracts and parameters
    namespace: str = "catalogvlm"
    component: str = "pipeline"
    discovery_backend: str = "file"
    request_plane: str = "tcp"
    engine: str = "cpu"  # cpu: the repository's engine models in this process; trtllm: dynamo.trtllm workers
    trtllm_endpoint: str = "dynamo.backend.generate"  # dynamo.trtllm's default endpoint
    trtllm_model: str = "Qwen/Qwen2-VL-7B-Instruct"
    tokenizer_dir: Path | None = None
    kv_block_size: int = 32

    def validate(self) -> WorkerConfig:
        if not self.repository.is_dir():
            raise ConfigurationError(f"--repository {self.repository} is not a folder")
        if self.engine == "trtllm" and not (self.tokenizer_dir and (self.tokenizer_dir / "tokenizer.json").is_file()):
            raise ConfigurationError("--engine trtllm needs --tokenizer-dir with the checkpoint's tokenizer.json")
        if self.trtllm_endpoint.count(".") != 2:
            raise ConfigurationError(
                f"--trtllm-endpoint must be namespace.component.endpoint, got {self.trtllm_endpoint!r}"
            )
        return self


def parse_args(argv: Sequence[str]) -> WorkerConfig:
    parser = argparse.ArgumentParser(prog="python -m catalogvlm.servers.dynamo_worker", description=__doc__)

    def option(flag: str, variable: str, default: object, **kwargs: object) -> None:
        parser.add_argument(flag, default=os.environ.get(variable, default), help=f"env: {variable}", **kwargs)

    option("--repository", "CATALOGVLM_REPOSITORY", None, type=Path)
    option("--namespace", "CATALOGVLM_DYNAMO_NAMESPACE", "catalogvlm")
    option("--component", "CATALOGVLM_DYNAMO_COMPONENT", "pipeline")
    option("--discovery-backend", "DYN_DISCOVERY_BACKEND", "file", choices=["file", "etcd", "kubernetes", "mem"])
    option("--request-plane", "DYN_REQUEST_PLANE", "tcp", choices=["tcp", "nats"])
    option("--engine", "CATALOGVLM_ENGINE", "cpu", choices=ENGINES)
    option("--trtllm-endpoint", "CATALOGVLM_TRTLLM_ENDPOINT", "dynamo.backend.generate")
    option("--trtllm-model", "CATALOGVLM_TRTLLM_MODEL", "Qwen/Qwen2-VL-7B-Instruct")
    option("--tokenizer-dir", "CATALOGVLM_TOKENIZER_DIR", None, type=Path)
    option("--kv-block-size", "CATALOGVLM_KV_BLOCK_SIZE", 32, type=int)
    args = parser.parse_args(argv)
    if args.repository is None:
        parser.error("--repository (or CATALOGVLM_REPOSITORY) is required")
    return WorkerConfig(
        Path(args.repository), args.namespace, args.component, args.discovery_backend, args.request_plane,
        args.engine, args.trtllm_endpoint, args.trtllm_model,
        Path(args.tokenizer_dir) if args.tokenizer_dir else None, int(args.kv_block_size),
    ).validate()  # fmt: skip
