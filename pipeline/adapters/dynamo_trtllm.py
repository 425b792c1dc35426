"""The `vlm` contract over Dynamo's runtime: the GPU route of the Dynamo deployment.

Each stage prompt goes to `python -m dynamo.trtllm --enable-multimodal` workers (Qwen2-VL on TensorRT-LLM's
PyTorch backend, FP8 ModelOpt checkpoint, in-flight batching) through Dynamo's KV-aware router: the prompt's
token ids (one `<|image_pad|>` per image, which the worker's input processor expands) pick the worker whose
cache already holds the shared instruction prefix. The image travels as a data URL in `multi_modal_data`, the
way Dynamo's own frontend forwards it.

The chain is synchronous and runs in worker threads; `generate` hands each call to the runtime's event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from dynamo.llm import KvRouter, KvRouterConfig

from ..errors import EngineError
from ..images import data_url
from ..qwen2vl.tokens import load_tokenizer


@dataclass(frozen=True)
class TrtllmRoute:
    endpoint: str  # the trtllm workers' endpoint, "namespace.component.endpoint"
    model: str  # their --served-model-name
    tokenizer_dir: Path  # the checkpoint's tokenizer (the workers tokenize nothing for us)
    kv_block_size: int = 32  # must equal the workers' tokens_per_block, or overlap scores are wrong
    timeout_s: float = 120.0


@dataclass
class KvReuse:
    """Prompt tokens sent and those the workers found cached: the prefix-reuse rate operators watch."""

    prompt_tokens: int = 0
    cached_tokens: int = 0


class TrtllmVlmEngine:
    def __init__(self, router, tokenizer, route: TrtllmRoute) -> None:
        self._router = router
        self._tokenizer = tokenizer
        self._route = route
        self.kv_reuse = KvReuse()

    @classmethod
    async def connect(cls, runtime, route: TrtllmRoute) -> TrtllmVlmEngine:
        router = KvRouter(runtime.endpoint(route.endpoint), route.kv_block_size, KvRouterConfig())
        return cls(router, load_tokenizer(route.tokenizer_dir), route)

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        try:
            return await asyncio.wait_for(self._generate(prompt, image, max_tokens), self._route.timeout_s)
        except TimeoutError as error:
            raise EngineError(f"{self._route.endpoint}: no answer within {self._route.timeout_s:.0f} s") from error

    async def _generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        token_ids = self._tokenizer.encode(prompt, add_special_tokens=False).ids
        media = {"image_url": [{"Url": data_url(image)}]} if image else None
        generated: list[int] = []
        try:
            stream = await self._router.generate(
                token_ids,
                self._route.model,
                stop_conditions={"max_tokens": max_tokens},
                sampling_options={"temperature": 0.0},
                multi_modal_data=media,
            )
            async for response in stream:
                self._count_usage(response.get("completion_usage"))
                if response.get("finish_reason") == "error":
                    raise EngineError(f"{self._route.endpoint}: the worker reported an error")
                generated.extend(response.get("token_ids") or ())
        except EngineError:
            raise
        except Exception as error:  # the runtime's errors: no worker, connection lost, worker exception
            raise EngineError(f"{self._route.endpoint}: {error}") from error
        return self._tokenizer.decode(generated, skip_special_tokens=True)

    def _count_usage(self, usage: dict | None) -> None:
        if usage and usage.get("completion_tokens") == 1:  # reported with the first token of each answer
            self.kv_reuse.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.kv_reuse.cached_tokens += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
