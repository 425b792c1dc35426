"""Worker configuration: one typed object, every flag also an environment variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SERVED_MODELS = ("product_understanding", "taxonomy_validate")
ENGINE_MODEL = "vlm"
ENGINES = ("cpu", "trtllm")


@dataclass(frozen=True)
class WorkerConfig:
    repository: Path  # a rendered model repository: the models' contracts and parameters
    namespace: str = "catalogvlm"
    component: str = "pipeline"
    discovery_backend: str = "file"
    request_plane: str = "tcp"
    threads: int = 4
    engine: str = "cpu"  # cpu: the CPU engine in this process; trtllm: dynamo.trtllm workers (GPU route)
    trtllm_endpoint: str = "dynamo.backend.generate"  # dynamo.trtllm's default endpoint
    trtllm_model: str = "Qwen/Qwen2-VL-7B-Instruct"
    tokenizer_dir: Path | None = None
    kv_block_size: int = 32

    def validate(self) -> WorkerConfig:
        needed = (*SERVED_MODELS, ENGINE_MODEL) if self.engine == "cpu" else SERVED_MODELS
        missing = [m for m in needed if not (self.repository / m / "config.pbtxt").is_file()]
        if missing:
            raise ValueError(f"{self.repository} is not a rendered catalogvlm repository: no {', '.join(missing)}")
        if self.threads < 1:
            raise ValueError("--threads must be at least 1")
        if self.engine == "trtllm" and not (self.tokenizer_dir and (self.tokenizer_dir / "tokenizer.json").is_file()):
            raise ValueError("--engine trtllm needs --tokenizer-dir with the checkpoint's tokenizer.json")
        if self.trtllm_endpoint.count(".") != 2:
            raise ValueError(f"--trtllm-endpoint must be namespace.component.endpoint, got {self.trtllm_endpoint!r}")
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
    option("--threads", "CATALOGVLM_DYNAMO_THREADS", 4, type=int)
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
        int(args.threads), args.engine, args.trtllm_endpoint, args.trtllm_model,
        Path(args.tokenizer_dir) if args.tokenizer_dir else None, int(args.kv_block_size),
    ).validate()  # fmt: skip
