"""Processes killed under load (kill -9), on the real tritonserver and on Dynamo: every product in flight ends
answered or with a retryable status, nothing hangs until its deadline, and the failure is seen (`supervise`,
the `catalogvlm health` probe) so that a process manager replaces the server.

Each test starts its own server: killing processes of the shared session server would break other tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import psutil
import pytest
from conftest import engine_double_models

from catalogvlm.client import AsyncProductClassifier, CatalogError, Prediction, Product
from catalogvlm.servers import served
from catalogvlm.servers.serve import supervise

pytestmark = pytest.mark.server
SLOW = "product_understanding_slow"  # one instance, in front of four scripted-engine instances (conftest.py)
IN_FLIGHT = 6


def _classify_in_background(url: str, retries: int, label: str) -> Future[list[tuple[float, object]]]:
    """IN_FLIGHT slow products sent at once from another thread: (seconds, Prediction or CatalogError) each.
    Their titles carry `label`, so that no answer comes from the result cache."""

    async def classify_all() -> list[tuple[float, object]]:
        async with AsyncProductClassifier(url, model_name=SLOW, retries=retries, timeout_s=60) as client:
            started = time.perf_counter()

            async def one(index: int) -> tuple[float, object]:
                try:
                    outcome: object = await client.classify(Product(title=f"Tee {label} {index} [sleep=1.5]"))
                except CatalogError as error:
                    outcome = error
                return time.perf_counter() - started, outcome

            return await asyncio.gather(*(one(i) for i in range(IN_FLIGHT)))

    future = ThreadPoolExecutor(max_workers=1).submit(asyncio.run, classify_all())
    time.sleep(0.7)  # all of them admitted and waiting on the engine
    return future


def _kill(server, command_part: str) -> None:
    processes = [psutil.Process(pid) for pid in server.pids]
    processes += [child for process in processes for child in process.children(recursive=True)]
    victim = next(p for p in processes if command_part in _command_line(p))
    os.kill(victim.pid, signal.SIGKILL)


def _command_line(process: psutil.Process) -> list[str]:
    """A process's command line; none for one already dead (a stub killed earlier stays a zombie: Triton 2.51
    does not reap it)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _probe(server, repository) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "catalogvlm.cli", "health", "--repository", str(repository)]
    return subprocess.run([*command, "--http-url", server.http_url], capture_output=True, text=True, timeout=60)


def test_a_killed_triton_stub_loses_no_product_and_the_server_is_replaced(tmp_path):
    repository = tmp_path / "repository"
    with served("cpu", repository=repository, extra_models=engine_double_models("triton")) as server:
        assert _probe(server, repository).returncode == 0

        # An engine stub dies: the chain's stage retries carry its products to the other three instances.
        products = _classify_in_background(server.grpc_url, retries=3, label="engine stub killed")
        _kill(server, "parallel_vlm_0_1")
        outcomes = products.result(timeout=90)
        assert all(isinstance(outcome, Prediction) for _, outcome in outcomes), outcomes
        # Triton keeps serving and says it is ready; the check and the probe see the dead stub.
        assert "parallel_vlm: 3 of 4 Python-backend stub processes running" in server.failure()
        probe = _probe(server, repository)
        assert probe.returncode == 1 and "parallel_vlm: 3 of 4" in probe.stderr

        # The chain's own stub dies with products in flight: Triton never answers them, so the supervisor
        # stops the server and their calls end UNAVAILABLE (retryable) instead of waiting out the deadline.
        products = _classify_in_background(server.grpc_url, retries=0, label="chain stub killed")
        _kill(server, f"{SLOW}_0_0")
        failure = supervise(server, threading.Event())
        outcomes = products.result(timeout=60)
    assert "parallel_vlm" in failure and f"{SLOW}: 0 of 1" in failure
    assert [getattr(outcome, "status", None) for _, outcome in outcomes] == ["UNAVAILABLE"] * IN_FLIGHT
    assert max(seconds for seconds, _ in outcomes) < 20


def test_a_killed_dynamo_worker_ends_every_call_retryable_at_once(tmp_path):
    repository = tmp_path / "repository"
    with served("cpu", backend="dynamo", repository=repository, extra_models=engine_double_models("dynamo")) as server:
        products = _classify_in_background(server.grpc_url, retries=0, label="worker killed")
        _kill(server, "catalogvlm.servers.dynamo_worker")
        outcomes = products.result(timeout=60)
        assert [getattr(outcome, "status", None) for _, outcome in outcomes] == ["UNAVAILABLE"] * IN_FLIGHT
        assert max(seconds for seconds, _ in outcomes) < 10  # the frontend ends the streams; no deadline waited
        assert supervise(server, threading.Event()) == "the Dynamo worker exited with code -9"
