"""The asynchronous pipeline without a server: many products in flight on one event loop, micro-batching,
back-pressure, deadlines, and the CPU engine answering a batch in one pass."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from catalogvlm.errors import INTERNAL, INVALID_ARGUMENT, UNAVAILABLE
from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.admission import Admission
from catalogvlm.pipeline.chain import ChainSettings, NullObserver, ProductUnderstandingChain
from catalogvlm.pipeline.cpu import CpuVlmEngine
from catalogvlm.pipeline.cpu.categories import CategoryClassifier
from catalogvlm.pipeline.engines import BatchedVlmEngine, GenerationRequest
from catalogvlm.pipeline.errors import EngineError, InvalidInput, Overloaded, StageFailed, status_of
from catalogvlm.pipeline.product import Product

CATEGORY = "Home & Garden > Decor > Home Fragrances > Candles"


class EchoEngine:
    """Answers after a per-product delay read from the title ("<seconds>|<name>"), echoing the title."""

    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        title = prompts.product_from_prompt(prompt)["title"]
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(float(title.split("|")[0]))
        finally:
            self.active -= 1
        if prompts.read_block(prompt, "attribute_menu") is None:
            return json.dumps({"category": CATEGORY, "simplified_description": title})
        return json.dumps({"attributes": {}})


def test_one_chain_carries_many_products_at_once_and_answers_each_its_own(taxonomy, corrector):
    engine = EchoEngine()
    chain = ProductUnderstandingChain(taxonomy, engine, corrector=corrector)
    titles = [f"{random.uniform(0.05, 0.3):.3f}|Soy candle {i}" for i in range(100)]

    async def all_products():
        return await asyncio.gather(*(chain.run(Product(title=t)) for t in titles))

    started = time.perf_counter()
    predictions = asyncio.run(all_products())
    elapsed = time.perf_counter() - started
    assert [p.category.simplified_description for p in predictions] == titles  # finished out of order, no mix-up
    assert engine.most_active >= 90  # nearly all in flight together
    assert elapsed < 2.0  # two stages of at most 0.3 s each, not 100 products one after another (~35 s)


def test_a_stage_attempt_past_its_deadline_is_retried_then_fails(taxonomy, corrector):
    chain = ProductUnderstandingChain(
        taxonomy, EchoEngine(), ChainSettings(max_retries_per_stage=1, attempt_timeout_s=0.05), corrector=corrector
    )
    with pytest.raises(StageFailed, match=r"category failed after 2 attempts: category attempt took longer than 0.05"):
        asyncio.run(chain.run(Product(title="1.0|Slow candle")))


class CountingBatchEngine:
    def __init__(self, seconds: float = 0.05) -> None:
        self.batches: list[int] = []
        self.seconds = seconds

    def generate_batch(self, requests):
        self.batches.append(len(requests))
        time.sleep(self.seconds)
        return [InvalidInput("text_input", "bad") if r.prompt == "bad" else r.prompt.upper() for r in requests]


def test_micro_batcher_forms_batches_and_keeps_each_answer_with_its_request():
    engine = CountingBatchEngine()
    batcher = BatchedVlmEngine(engine, max_batch_size=16, max_delay_s=0.005)

    async def many():
        prompts_ = [f"prompt {i}" for i in range(40)] + ["bad"]
        return prompts_, await asyncio.gather(*(batcher.generate(p, None, 8) for p in prompts_), return_exceptions=True)

    sent, answers = asyncio.run(many())
    assert answers[:-1] == [p.upper() for p in sent[:-1]]
    assert isinstance(answers[-1], InvalidInput)  # one request's error stays with that request
    assert max(engine.batches) <= 16 and len(engine.batches) <= 5 and sum(engine.batches) == 41


def test_micro_batcher_runs_as_many_batches_at_once_as_instances():
    async def timed(instances: int) -> float:
        engine = CountingBatchEngine(seconds=0.2)
        batcher = BatchedVlmEngine(engine, max_batch_size=1, max_delay_s=0, instances=instances)
        started = time.perf_counter()
        await asyncio.gather(*(batcher.generate(f"p{i}", None, 8) for i in range(4)))
        return time.perf_counter() - started

    assert asyncio.run(timed(1)) >= 0.75
    assert asyncio.run(timed(4)) < 0.5


def test_micro_batcher_reports_an_engine_failure_to_every_request_of_the_batch():
    class Broken:
        def generate_batch(self, requests):
            raise RuntimeError("out of memory")

    async def two():
        batcher = BatchedVlmEngine(Broken(), max_batch_size=8, max_delay_s=0.01)
        return await asyncio.gather(*(batcher.generate("p", None, 8) for _ in range(2)), return_exceptions=True)

    answers = asyncio.run(two())
    assert all(isinstance(a, EngineError) and "out of memory" in str(a) for a in answers)


class Refusals(NullObserver):
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.counts: list[int] = []

    def request_refused(self, reason: str) -> None:
        self.reasons.append(reason)

    def inflight_changed(self, count: int) -> None:
        self.counts.append(count)


def test_admission_refuses_at_once_past_its_bounds_and_while_closing():
    observer = Refusals()
    admission = Admission(max_inflight=2, max_inflight_image_bytes=100, observer=observer)
    full = pytest.raises(Overloaded, match="already carries 2 products")
    with admission.admit(60), admission.admit(0), full, admission.admit(0):
        pass
    too_heavy = pytest.raises(Overloaded, match="images in flight would exceed 100 bytes")
    with admission.admit(60), too_heavy, admission.admit(50):
        pass
    with admission.admit(500):  # one product alone is never refused for its image's size (limits do that)
        pass
    admission.closing = True
    with pytest.raises(Overloaded, match="shutting down"), admission.admit(0):
        pass
    assert observer.reasons == ["max_inflight", "max_inflight_image_bytes", "shutting_down"]
    assert max(observer.counts) == 2 and observer.counts[-1] == 0 and admission.image_bytes == 0


def test_every_error_kind_carries_its_status():
    assert status_of(InvalidInput("title", "is empty")) == INVALID_ARGUMENT
    assert status_of(StageFailed("category", 3, EngineError("x"))) == UNAVAILABLE
    assert status_of(Overloaded("busy")) == UNAVAILABLE
    assert status_of(KeyError("bug")) == INTERNAL


def test_cpu_engine_answers_a_mixed_batch_in_order(taxonomy):
    engine = CpuVlmEngine(CategoryClassifier(taxonomy, None))  # lexical view only: no embedding cache needed
    candle = Product(title="Lavender Soy Candle", description="Amber glass jar")
    category = next(c for c in taxonomy if c.full_name == CATEGORY)
    requests = [
        GenerationRequest(prompts.category_prompt(candle), None, 256),
        GenerationRequest("no product block here", None, 256),
        GenerationRequest(prompts.attribute_prompt(candle, category.full_name, category.attributes), None, 512),
        GenerationRequest(prompts.category_prompt(Product(title="Leather Hiking Boots")), None, 256),
    ]
    first, broken, attributes, boots = engine.generate_batch(requests)
    assert "Candles" in json.loads(first)["category"]
    assert isinstance(broken, EngineError)
    assert "attributes" in json.loads(attributes)
    assert "Boots" in json.loads(boots)["category"]
