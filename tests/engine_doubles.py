"""A test double of the `vlm` engine, served by the real engine model on Triton and in the Dynamo worker
(`engine_factory: engine_doubles:ScriptedEngine`; the serving fixture ships this file beside model.py).

It answers from the prompt alone, so every answer can be traced to its product: stage 1 names a fixed
category and echoes the product's title as the simplified description; stage 2 names one colour. Markers
in the title script its behaviour:
- `[sleep=S]`: the batch holding this prompt takes S seconds (each stage);
- `[fail-attributes]`: stage 2 answers truncated JSON, always;
- `[retry-once]`: stage 2 answers truncated JSON the first time a title is seen (per engine instance).
"""

from __future__ import annotations

import collections
import json
import re
import time
from collections.abc import Mapping, Sequence

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.engines import BatchAnswers, GenerationRequest

CATEGORY = "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts"
TRUNCATED = '{"attributes": {"color": ["Bl'
_SLEEP = re.compile(r"\[sleep=([0-9.]+)\]")


class ScriptedEngine:
    def __init__(self, parameters: Mapping[str, str]) -> None:
        self._stage2_calls: collections.Counter[str] = collections.Counter()

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> BatchAnswers:
        titles = [prompts.product_from_prompt(r.prompt).get("title", "") for r in requests]
        time.sleep(max((float(m.group(1)) for t in titles if (m := _SLEEP.search(t))), default=0.0))
        return [self._answer(request.prompt, title) for request, title in zip(requests, titles, strict=True)]

    def _answer(self, prompt: str, title: str) -> str:
        if prompts.read_block(prompt, "attribute_menu") is None:
            return json.dumps({"category": CATEGORY, "simplified_description": title, "image_description": ""})
        self._stage2_calls[title] += 1
        if "[fail-attributes]" in title or ("[retry-once]" in title and self._stage2_calls[title] == 1):
            return TRUNCATED
        return json.dumps({"attributes": {"color": ["Black"]}})
