"""Many products in flight through one product_understanding instance, on Triton and on Dynamo.

`product_understanding_slow` (tests/conftest.py) has one instance with max_inflight 6 in front of a scripted
engine with four instances, each answering one prompt at a time after the `[sleep=S]` its title asks for.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request

import pytest
from conftest import SLOW_MAX_INFLIGHT, engine_double_models

from catalogvlm.client import AsyncProductClassifier, CatalogError, Prediction, Product, ProductClassifier
from catalogvlm.servers import served

pytestmark = pytest.mark.server
SLOW = "product_understanding_slow"


async def _classify_all(url: str, titles: list[str], timeout_s: float = 60.0) -> list[tuple[float, object]]:
    """(seconds until answered, Prediction or CatalogError) per title, all sent at once."""
    async with AsyncProductClassifier(url, model_name=SLOW, retries=0, timeout_s=timeout_s) as client:
        started = time.perf_counter()

        async def one(title: str) -> tuple[float, object]:
            try:
                outcome: object = await client.classify(Product(title=title))
            except CatalogError as error:
                outcome = error
            return time.perf_counter() - started, outcome

        return await asyncio.gather(*(one(t) for t in titles))


def test_products_finishing_out_of_order_get_their_own_answers(grpc_url):
    titles = [f"Tee {name} [sleep={s}]" for name, s in (("A", 1.2), ("B", 0.1), ("C", 0.7), ("D", 0.3))]
    outcomes = asyncio.run(_classify_all(grpc_url, titles))
    for title, (_, prediction) in zip(titles, outcomes, strict=True):
        assert isinstance(prediction, Prediction), prediction
        assert prediction.simplified_description == title  # the engine echoes each product's own title
    finish_order = [title for _, title in sorted(zip([s for s, _ in outcomes], titles, strict=True))]
    assert finish_order == [titles[1], titles[3], titles[2], titles[0]]


def test_one_products_failing_stage_does_not_disturb_the_others(grpc_url):
    titles = ["Tee fine 1 [sleep=0.3]", "Tee broken [fail-attributes] [sleep=0.2]", "Tee fine 2 [sleep=0.4]"]
    (_, first), (_, broken), (_, second) = asyncio.run(_classify_all(grpc_url, titles))
    assert isinstance(broken, CatalogError) and broken.status == "UNAVAILABLE"
    assert "attributes failed after 3 attempts" in broken.message
    assert first.simplified_description == titles[0] and second.simplified_description == titles[2]


def test_past_max_inflight_a_request_is_refused_at_once_and_counted(grpc_url, server):
    refused_before = _refusals(server)

    async def fill_then_one_more():
        async with AsyncProductClassifier(grpc_url, model_name=SLOW, retries=0) as client:
            held = [
                asyncio.create_task(client.classify(Product(title=f"Tee held {i} [sleep=1.5]")))
                for i in range(SLOW_MAX_INFLIGHT)
            ]
            await asyncio.sleep(0.5)  # all of them admitted and waiting on the engine
            started = time.perf_counter()
            with pytest.raises(CatalogError) as refused:
                await client.classify(Product(title="Tee one too many"))
            refusal_s = time.perf_counter() - started
            return refused.value, refusal_s, await asyncio.gather(*held)

    refusal, refusal_s, held = asyncio.run(fill_then_one_more())
    assert refusal.status == "UNAVAILABLE" and "max_inflight" in refusal.message
    assert refusal_s < 0.5  # refused at once, not queued behind the six
    assert [p.simplified_description for p in held] == [f"Tee held {i} [sleep=1.5]" for i in range(SLOW_MAX_INFLIGHT)]
    if server.backend == "triton":
        assert _refusals(server) - refused_before == 1


def test_the_client_retries_a_refusal_into_an_answer(grpc_url):
    async def fill_then_retrying_client():
        async with AsyncProductClassifier(grpc_url, model_name=SLOW, retries=0) as holder:
            held = [holder.classify(Product(title=f"Tee busy {i} [sleep=0.5]")) for i in range(SLOW_MAX_INFLIGHT)]
            held_task = asyncio.gather(*held)
            await asyncio.sleep(0.3)
            async with AsyncProductClassifier(grpc_url, model_name=SLOW, retries=6, backoff_s=0.2) as patient:
                answer = await patient.classify(Product(title="Tee patient"))
            await held_task
            return answer

    assert asyncio.run(fill_then_retrying_client()).simplified_description == "Tee patient"


def test_a_burst_past_max_inflight_is_answered_in_full_by_retrying_clients(grpc_url, server):
    """Three times what the instance admits, all at once: refusals, then answers as the load falls."""
    refused_before = _refusals(server) if server.backend == "triton" else 0.0
    titles = [f"Tee burst {i} [sleep=0.2]" for i in range(3 * SLOW_MAX_INFLIGHT)]

    async def burst():
        async with AsyncProductClassifier(grpc_url, model_name=SLOW, retries=8, backoff_s=0.2) as client:
            return await asyncio.gather(*(client.classify(Product(title=title)) for title in titles))

    assert [p.simplified_description for p in asyncio.run(burst())] == titles
    if server.backend == "triton":
        assert _refusals(server) - refused_before >= SLOW_MAX_INFLIGHT  # the retries were needed


def test_a_client_deadline_ends_the_call_and_the_server_keeps_serving(grpc_url):
    client = ProductClassifier(grpc_url, model_name=SLOW, retries=0, timeout_s=0.3)
    with client, pytest.raises(CatalogError) as late:
        client.classify(Product(title="Tee too slow [sleep=1.0]"))
    assert late.value.status == "DEADLINE_EXCEEDED"
    with ProductClassifier(grpc_url, retries=0) as client:
        assert client.classify(Product(title="Ceramic Coffee Mug")).category.full_name


@pytest.mark.parametrize("backend", ["triton", "dynamo"])
def test_shutdown_with_products_in_flight_ends_every_one_of_them(backend, tmp_path):
    """SIGTERM while six products are in flight: each is answered or refused; none hangs."""
    with served(
        "cpu", backend=backend, repository=tmp_path / "repository", extra_models=engine_double_models(backend)
    ) as s:
        url = s.grpc_url

        async def in_flight_then_stop():
            calls = asyncio.create_task(_classify_all(url, [f"Tee {i} [sleep=1.0]" for i in range(6)], timeout_s=90))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(s.stop)
            return await asyncio.wait_for(calls, 120)

        started = time.perf_counter()
        outcomes = asyncio.run(in_flight_then_stop())
    assert time.perf_counter() - started < 90
    for index, (_, outcome) in enumerate(outcomes):
        if isinstance(outcome, Prediction):
            assert outcome.simplified_description == f"Tee {index} [sleep=1.0]"
        else:
            assert isinstance(outcome, CatalogError) and outcome.status == "UNAVAILABLE", outcome


def _refusals(server) -> float:
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    labels = f'model="{SLOW}",reason="max_inflight"'
    match = re.search(rf"^catalogvlm_requests_refused_total\{{{re.escape(labels)}\}} (\S+)$", text, flags=re.MULTILINE)
    return float(match.group(1)) if match else 0.0
