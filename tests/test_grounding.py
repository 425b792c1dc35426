"""Grounded prompts and the cost cascade: where the candidates block sits in the stage-1 prompt of both profiles,
how many `vlm` calls a product makes above and below the cascade threshold, candidates that stay inside the
taxonomy, the routes counted, and the recall, cascade and capacity arithmetic by hand."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogvlm.builders.repository import render_repository
from catalogvlm.builders.validation import load_configs
from catalogvlm.errors import ConfigurationError
from catalogvlm.evaluation.metrics import candidate_recall, cascade_table
from catalogvlm.loadtest.capacity import Demand, GpuSupply, plan
from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.candidates import Candidate, CandidateRequest, CategoryCandidates
from catalogvlm.pipeline.chain import ChainSettings, NullObserver, ProductUnderstandingChain
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.cpu.categories import CategoryClassifier
from catalogvlm.pipeline.cpu.retrieval import CategoryRetriever
from catalogvlm.pipeline.errors import EngineError, InvalidInput, ModelOutputError
from catalogvlm.pipeline.service import ProductUnderstandingService, cascade_threshold

CANDLES = "Home & Garden > Decor > Home Fragrances > Candles"
DIFFUSERS = "Home & Garden > Decor > Home Fragrances > Essential Oil Diffusers"


class CountingEngine:
    """The `vlm` test double: answers stage 1 with its first candidate (or Candles), stage 2 with no values, and
    keeps every prompt it was sent."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        self.prompts.append(prompt)
        if prompts.read_block(prompt, "attribute_menu") is not None:
            return json.dumps({"attributes": {}})
        candidates = prompts.candidates_from_prompt(prompt)
        return json.dumps({"category": candidates[0].category if candidates else CANDLES})


class FixedCandidates:
    """Retrieval's test double: the same candidates for every product, the first with `confidence`."""

    def __init__(self, confidence: float) -> None:
        self.confidence = confidence
        self.asked: list[int] = []

    async def find(self, product: Product, top_k: int) -> CategoryCandidates:
        self.asked.append(top_k)
        found = (Candidate(CANDLES, self.confidence), Candidate(DIFFUSERS, 0.1))
        return CategoryCandidates(found[:top_k], f"simplified {product.title}")


class Routes(NullObserver):
    def __init__(self) -> None:
        self.routes: list[str] = []

    def category_routed(self, source: str) -> None:
        self.routes.append(source)


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_candidates_block_follows_the_shared_prefix_once_in_both_profiles(tmp_path, taxonomy_path, profile):
    """The stage-1 prompt each profile's rendered product_understanding sends: the instructions every request
    shares, then the candidates block (once), then the product; the same prompt in both profiles."""
    render_repository(profile, tmp_path, {"taxonomy_dir": str(taxonomy_path), "embeddings_dir": str(tmp_path)})
    config = load_configs(tmp_path)["product_understanding"]
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    engine = CountingEngine()
    service = ProductUnderstandingService(parameters, engine, FixedCandidates(0.5))
    asyncio.run(service.answer({"title": b"Lavender soy candle"}, None))
    category_prompt, attribute_prompt = engine.prompts
    prefix = prompts.chat(prompts.SYSTEM, prompts.CATEGORY_TASK).removesuffix("<|im_end|>\n<|im_start|>assistant\n")
    block = prompts.candidates_block([Candidate(CANDLES, 0.5), Candidate(DIFFUSERS, 0.1)])
    assert category_prompt.startswith(prefix + "\n\n" + block + "\n\n<product>")
    assert category_prompt.count(f"<{prompts.CANDIDATES_TAG}>") == 1
    assert f"<{prompts.CANDIDATES_TAG}>" not in attribute_prompt
    # both profiles ground the same prompt: the rendered parameters agree with the CPU profile's
    assert category_prompt == prompts.category_prompt(Product(title="Lavender soy candle"), block_candidates())


def block_candidates() -> list[Candidate]:
    return [Candidate(CANDLES, 0.5), Candidate(DIFFUSERS, 0.1)]


def test_an_ungrounded_prompt_is_the_grounded_one_without_the_block():
    product = Product(title="Red mug")
    grounded = prompts.category_prompt(product, [Candidate(CANDLES, 0.42)])
    assert grounded.replace("\n\n" + prompts.candidates_block([Candidate(CANDLES, 0.42)]), "") == (
        prompts.category_prompt(product)
    )
    assert prompts.candidates_from_prompt(grounded) == (Candidate(CANDLES, 0.42),)
    assert prompts.candidates_from_prompt(prompts.category_prompt(product)) == ()


@pytest.mark.parametrize(
    ("confidence", "vlm_calls", "source"), [(0.95, 1, "retrieval"), (0.9, 1, "retrieval"), (0.89, 2, "vlm")]
)
def test_above_the_threshold_retrieval_answers_stage_1_and_the_vlm_only_stage_2(
    taxonomy, confidence, vlm_calls, source
):
    engine, routes = CountingEngine(), Routes()
    chain = ProductUnderstandingChain(
        taxonomy,
        engine,
        ChainSettings(candidates_top_k=2, cascade_threshold=0.9),
        observer=routes,
        candidates=FixedCandidates(confidence),
    )
    prediction = asyncio.run(chain.run(Product(title="Lavender soy candle", image=None)))
    assert len(engine.prompts) == vlm_calls and routes.routes == [source]
    result = prediction.to_dict()
    assert result["category"]["source"] == source and result["category"]["full_name"] == CANDLES
    if source == "retrieval":
        assert result["simplified_description"] == "simplified Lavender soy candle"
        assert result["category"]["confidence"] == confidence and not result["category"]["corrected"]
        assert prompts.read_block(engine.prompts[0], "attribute_menu") is not None  # the one call is stage 2


def test_the_cascade_alone_asks_for_one_candidate_and_keeps_the_prompt_ungrounded(taxonomy):
    engine, candidates = CountingEngine(), FixedCandidates(0.5)
    chain = ProductUnderstandingChain(
        taxonomy, engine, ChainSettings(candidates_top_k=0, cascade_threshold=0.9), candidates=candidates
    )
    asyncio.run(chain.run(Product(title="Lavender soy candle")))
    assert candidates.asked == [1] and f"<{prompts.CANDIDATES_TAG}>" not in engine.prompts[0]


def test_grounding_without_a_candidate_source_is_a_configuration_error(taxonomy):
    with pytest.raises(ConfigurationError, match="category_candidates"):
        ProductUnderstandingChain(taxonomy, CountingEngine(), ChainSettings(candidates_top_k=10))


@pytest.mark.parametrize(("value", "expected"), [("off", None), ("OFF", None), ("0.9", 0.9), ("0", 0.0), ("1", 1.0)])
def test_cascade_threshold_parameter(value, expected):
    assert cascade_threshold(value) == expected


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high", ""])
def test_a_bad_cascade_threshold_is_refused_naming_the_parameter(value):
    with pytest.raises(ConfigurationError, match="cascade_threshold"):
        cascade_threshold(value)


@pytest.fixture(scope="module")
def lexical_retriever(taxonomy):
    return CategoryRetriever(CategoryClassifier(taxonomy, None))  # the lexical view alone: no embeddings to build


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    title=st.text(min_size=1, max_size=60),
    description=st.text(max_size=120),
    top_k=st.integers(min_value=1, max_value=12),
)
def test_candidates_are_distinct_taxonomy_categories_with_confidences(
    lexical_retriever, taxonomy, title, description, top_k
):
    (found,) = lexical_retriever.find_batch([CandidateRequest({"title": title, "description": description}, top_k)])
    paths = {c.full_name for c in taxonomy}
    assert isinstance(found, CategoryCandidates)
    assert 1 <= len(found.candidates) <= top_k
    assert all(c.category in paths and 0.0 <= c.confidence <= 1.0 for c in found.candidates)
    assert len({c.category for c in found.candidates}) == len(found.candidates)
    (answer, confidence), *_ = lexical_retriever.answers([{"title": title, "description": description}])
    assert found.first == Candidate(answer.full_name, confidence)  # the first candidate is retrieval's answer


def test_an_impossible_top_k_is_that_request_s_own_error(lexical_retriever):
    good, bad = lexical_retriever.find_batch(
        [CandidateRequest({"title": "wool socks"}, 3), CandidateRequest({"title": "wool socks"}, 0)]
    )
    assert isinstance(good, CategoryCandidates) and len(good.candidates) == 3
    assert isinstance(bad, InvalidInput) and bad.field == "top_k"


def test_candidates_round_trip_as_json():
    found = CategoryCandidates((Candidate(CANDLES, 0.75), Candidate(DIFFUSERS, 0.125)), "A candle.")
    assert CategoryCandidates.from_json(found.to_json()) == found


@pytest.mark.parametrize(
    "body", ['{"category": "x"}', '[{"category": "x"}]', '["x"]', '[{"category": "x", "confidence": "high"}]']
)
def test_an_unreadable_candidates_block_or_answer_is_a_retryable_error(body):
    prompt = prompts.chat(prompts.SYSTEM, prompts.block(prompts.CANDIDATES_TAG, body))
    with pytest.raises(ModelOutputError, match="category_candidates"):
        prompts.candidates_from_prompt(prompt)
    with pytest.raises(EngineError, match="unreadable category candidates"):
        CategoryCandidates.from_json(f'{{"candidates": {body}}}')


def test_candidate_recall_by_hand():
    candidates = [["aa-1", "aa-2"], ["bb-1-2", "bb-1"], ["cc-3"], ["aa-1"]]
    labels = ["aa-1-4", "bb-1-2", "cc-1", ""]  # an ancestor; the label itself; a miss; no label (left out)
    at_1, at_2 = candidate_recall(candidates, labels, ks=(1, 2))
    assert (at_1.products, at_1.recall, at_1.exact_recall) == (3, pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert (at_2.recall, at_2.exact_recall) == (pytest.approx(2 / 3), pytest.approx(1 / 3))


def test_cascade_table_by_hand():
    rows = cascade_table([0.97, 0.92, 0.85, 0.5], [True, False, True, True], thresholds=(0.8, 0.9, 0.95))
    assert [(r.answered_by_retrieval, r.share) for r in rows] == [(3, 0.75), (2, 0.5), (1, 0.25)]
    assert [r.precision for r in rows] == [pytest.approx(2 / 3), 0.5, 1.0]


def test_the_capacity_plan_counts_the_gpus_the_cascade_saves():
    demand = Demand(products_per_day=10_000_000)
    without = plan(demand, GpuSupply(products_per_s=40))
    with_cascade = plan(demand, GpuSupply(products_per_s=40, cascade_share=0.5, stage1_share=0.5))
    # half the products skip a stage that is half their GPU time: each GPU serves 40 / 0.75 products/s
    assert with_cascade.usable_per_gpu_per_s == pytest.approx(40 / 0.75 * 0.7)
    assert with_cascade.gpus_without_cascade == without.gpus == 13 and with_cascade.gpus == 10
    assert "3 saved" in "\n".join(with_cascade.arithmetic)


def test_eval_scores_each_route_that_answered_stage_1():
    from catalogvlm.client import Prediction
    from catalogvlm.evaluation.cli import _routes
    from catalogvlm.evaluation.labelled import LabelledProduct

    def answered(category_id: str, source: str) -> Prediction:
        category = {"id": category_id, "full_name": "", "score": 100.0, "corrected": False, "source": source}
        return Prediction.from_result({"category": category}, 0.0)

    def labelled(label: str) -> LabelledProduct:
        return LabelledProduct("store", Product(title="x"), label, None)

    scored = [
        (answered("aa-1", "retrieval"), labelled("aa-1-4")),  # an ancestor: right
        (answered("bb-1", "retrieval"), labelled("aa-1")),  # wrong
        (answered("aa-1-4", "vlm"), labelled("aa-1-4")),
        (answered("aa-2", "vlm"), labelled("")),  # no label: counted, not scored
    ]
    assert _routes(scored) == {"retrieval": {"products": 2, "right": 0.5}, "vlm": {"products": 2, "right": 1.0}}
