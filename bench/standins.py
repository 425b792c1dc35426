"""Benchmark stand-ins for the `vlm` engine: answers that cost nothing, after a fixed time per batch.

An in-flight-batching GPU engine takes about as long for a batch of 200 prompts as for one; a pipeline keeps
it busy only if it has many products in flight. `FixedLatencyEngine` is that engine without the GPU: any
batch takes `standin_latency_s`, so the pipeline's throughput can be compared with the ideal
concurrency / (2 stages × latency). With no latency it measures the pipeline's own cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from catalogvlm.pipeline.engines import BatchAnswers, GenerationRequest

CATEGORY = json.dumps(
    {
        "category": "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",
        "simplified_description": "A cotton t-shirt.",
        "image_description": "",
    }
)
ATTRIBUTES = json.dumps({"attributes": {"color": ["Black"], "fabric": ["Cotton"]}})


class FixedLatencyEngine:
    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.latency_s = float(parameters.get("standin_latency_s", "0"))

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> BatchAnswers:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        return [ATTRIBUTES if "<attribute_menu>" in r.prompt else CATEGORY for r in requests]
