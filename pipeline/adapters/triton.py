"""Triton Python-backend glue: tensors, the status of an error, the `vlm` over BLS, metrics. Imported only
inside tritonserver (by the model classes in `triton_models.py`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping

import numpy as np
import triton_python_backend_utils as pb_utils

from catalogvlm.errors import INVALID_ARGUMENT

from .. import contract
from ..candidates import RETRIEVAL_SOURCE, VLM_SOURCE, CategoryCandidates
from ..contract import Product
from ..errors import EngineError, InvalidInput, public_message, status_of
from ..images import data_url

log = logging.getLogger(__name__)

METRIC_PREFIX = "catalogvlm"
GAUGE_INTERVAL_S = 0.5
LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


def model_parameters(args: Mapping[str, str]) -> dict[str, str]:
    """The `parameters` of the model's config.pbtxt as a plain {key: string_value} mapping."""
    config = json.loads(args["model_config"])
    return {key: entry["string_value"] for key, entry in config.get("parameters", {}).items()}


def _single_element(request: pb_utils.InferenceRequest, name: str) -> object | None:
    """The one element of an optional [1]-shaped input, or None when the input was not sent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    values = tensor.as_numpy().reshape(-1)
    if values.size != 1:
        raise InvalidInput(name, f"must hold exactly one element, got {values.size}")
    return values[0]


def text_input(request: pb_utils.InferenceRequest, name: str) -> bytes | None:
    value = _single_element(request, name)
    return value if value is None or isinstance(value, bytes) else str(value).encode()


def utf8_input(request: pb_utils.InferenceRequest, name: str) -> str:
    """A required one-element BYTES input as text."""
    value = text_input(request, name)
    if value is None:
        raise InvalidInput(name, "is required")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(name, "is not valid UTF-8") from error


def bytes_input(request: pb_utils.InferenceRequest, name: str) -> bytes | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().tobytes()


def int_input(request: pb_utils.InferenceRequest, name: str, default: int) -> int:
    value = _single_element(request, name)
    return default if value is None else int(value)


def text_tensor(name: str, values: str | Iterable[str], batch_of_one: bool = False) -> pb_utils.Tensor:
    """A BYTES tensor of UTF-8 strings; `batch_of_one` adds the leading batch dimension of batching models."""
    items = [values] if isinstance(values, str) else list(values)
    array = np.array([v.encode("utf-8") for v in items], dtype=np.object_)
    return pb_utils.Tensor(name, array[None] if batch_of_one else array)


# pb_utils.TritonError's code names, where they differ from the gRPC status names of catalogvlm.errors.
_TRITON_CODE_NAMES = {INVALID_ARGUMENT: "INVALID_ARG"}


def error_response(error: BaseException) -> pb_utils.InferenceResponse:
    """The error's own status (catalogvlm.errors) as a Triton error, with a message and never a traceback."""
    status = status_of(error)
    code = getattr(pb_utils.TritonError, _TRITON_CODE_NAMES.get(status, status))
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(public_message(error, log), code))


class BlsVlmEngine:
    """The `vlm` contract over an asynchronous BLS call: whichever engine serves that model (CPU, TensorRT-LLM)
    answers, while this instance's event loop carries the other products in flight.

    `vlm` batches in every profile (the GPU ensemble's models must), so each call is a batch of one.
    """

    def __init__(self, model_name: str, timeout_ms: int = 0) -> None:
        self._model_name = model_name
        self._timeout_ms = timeout_ms

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        inputs = [
            text_tensor(contract.TEXT_INPUT, prompt, batch_of_one=True),
            pb_utils.Tensor(contract.MAX_TOKENS_INPUT, np.array([[max_tokens]], dtype=np.int32)),
        ]
        if image is not None:
            inputs.append(pb_utils.Tensor(contract.IMAGE_INPUT, np.frombuffer(image, dtype=np.uint8)[None]))
        return await bls_text(self._model_name, inputs, contract.TEXT_OUTPUT, self._timeout_ms)


class BlsLlmApiEngine:
    """The same calls to NVIDIA's TensorRT-LLM LLM-API model (the gpu profile's `vlm` slot), in its own tensors:
    one prompt and at most one image as a data URI per request, no batch dimension, greedy decoding (the answer
    is JSON to be parsed, not prose to be varied)."""

    def __init__(self, model_name: str, timeout_ms: int = 0) -> None:
        self._model_name = model_name
        self._timeout_ms = timeout_ms

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        inputs = [
            text_tensor(contract.LLMAPI_TEXT_INPUT, prompt),
            pb_utils.Tensor(contract.LLMAPI_MAX_TOKENS_INPUT, np.array([max_tokens], dtype=np.int32)),
            pb_utils.Tensor(contract.LLMAPI_TEMPERATURE_INPUT, np.array([0.0], dtype=np.float32)),
        ]
        if image is not None:
            inputs.append(text_tensor(contract.LLMAPI_IMAGE_INPUT, data_url(image)))
        return await bls_text(self._model_name, inputs, contract.LLMAPI_TEXT_OUTPUT, self._timeout_ms)


VLM_ENGINES = {"catalogvlm": BlsVlmEngine, "llmapi": BlsLlmApiEngine}  # by product_understanding's vlm_protocol


class BlsCandidateSource:
    """The `category_candidates` step over an asynchronous BLS call (a batch of one; the model batches)."""

    def __init__(self, model_name: str, timeout_ms: int = 0) -> None:
        self._model_name = model_name
        self._timeout_ms = timeout_ms

    async def find(self, product: Product, top_k: int) -> CategoryCandidates:
        inputs = [text_tensor(name, value, batch_of_one=True) for name, value in product.text_fields().items()]
        inputs.append(pb_utils.Tensor(contract.TOP_K_INPUT, np.array([[top_k]], dtype=np.int32)))
        answer = await bls_text(self._model_name, inputs, contract.CANDIDATES_OUTPUT, self._timeout_ms)
        return CategoryCandidates.from_json(answer)


async def bls_text(model_name: str, inputs: list[pb_utils.Tensor], output_name: str, timeout_ms: int) -> str:
    """The one text element of `output_name` from another model of this server; its refusal of the request
    is the caller's InvalidInput, any other failure an EngineError (the stage retries)."""
    request = pb_utils.InferenceRequest(
        model_name=model_name, requested_output_names=[output_name], inputs=inputs, timeout=timeout_ms * 1000
    )
    response = await request.async_exec()
    if response.has_error():
        error = response.error()
        if error.code() == pb_utils.TritonError.INVALID_ARG:  # e.g. a product too long for the engine
            raise InvalidInput("product", f"{model_name} refused it: {error.message()}")
        raise EngineError(f"{model_name}: {error.message()}")
    output = pb_utils.get_output_tensor_by_name(response, output_name).as_numpy().reshape(-1)[0]
    return output.decode("utf-8") if isinstance(output, bytes) else str(output)


# name suffix, help text, kind, whether it has a `stage` label
_METRICS = {
    "corrections": ("category_corrections_total", "Stage-1 paths corrected to a taxonomy category", "COUNTER", False),
    "dropped": ("dropped_attribute_values_total", "Attribute values not in the category's lists", "COUNTER", False),
    "retries": ("stage_retries_total", "Stage attempts that were retried", "COUNTER", True),
    "failures": ("stage_failures_total", "Stages that failed after all their retries", "COUNTER", True),
    "latency": ("stage_latency_seconds", "Latency of successful stage attempts", "HISTOGRAM", True),
}
REFUSAL_REASONS = ("max_inflight", "max_inflight_image_bytes", "shutting_down")


class TritonMetrics:
    """The chain's counts as Triton custom metrics (served on the metrics port beside nv_inference_*).

    The families are kept on the instance: Triton requires a MetricFamily to outlive its metrics.
    """

    def __init__(self, model_name: str, instance_name: str, stages: Iterable[str]) -> None:
        stages = tuple(stages)
        self._families = {}
        self._metrics: dict[tuple[str, str | None], pb_utils.Metric] = {}
        for key, (suffix, description, kind, per_stage) in _METRICS.items():
            family_kind = getattr(pb_utils.MetricFamily, kind)
            family = self._families[key] = pb_utils.MetricFamily(f"{METRIC_PREFIX}_{suffix}", description, family_kind)
            extra = {"buckets": LATENCY_BUCKETS_S} if kind == "HISTOGRAM" else {}
            for stage in stages if per_stage else (None,):
                labels = {"model": model_name, **({"stage": stage} if stage else {})}
                self._metrics[key, stage] = family.Metric(labels=labels, **extra)
        refused = self._families["refused"] = pb_utils.MetricFamily(
            f"{METRIC_PREFIX}_requests_refused_total",
            "Requests refused at once (UNAVAILABLE)",
            pb_utils.MetricFamily.COUNTER,
        )
        for reason in REFUSAL_REASONS:
            self._metrics["refused", reason] = refused.Metric(labels={"model": model_name, "reason": reason})
        # Per instance: each instance admits up to its own max_inflight, and a gauge shared by instances would
        # only show the last one's count.
        inflight = self._families["inflight"] = pb_utils.MetricFamily(
            f"{METRIC_PREFIX}_inflight_requests",
            "Products this model instance carries now",
            pb_utils.MetricFamily.GAUGE,
        )
        self._metrics["inflight", None] = inflight.Metric(labels={"model": model_name, "instance": instance_name})
        cache = self._families["result_cache"] = pb_utils.MetricFamily(
            f"{METRIC_PREFIX}_result_cache_lookups_total",
            "Result cache lookups, by outcome (a hit is answered without a model call)",
            pb_utils.MetricFamily.COUNTER,
        )
        for outcome in ("hit", "miss"):
            self._metrics["result_cache", outcome] = cache.Metric(labels={"model": model_name, "outcome": outcome})
        routes = self._families["routes"] = pb_utils.MetricFamily(
            f"{METRIC_PREFIX}_category_routes_total",
            "Products whose category the VLM answered, or retrieval (the cost cascade)",
            pb_utils.MetricFamily.COUNTER,
        )
        for source in (VLM_SOURCE, RETRIEVAL_SOURCE):
            self._metrics["routes", source] = routes.Metric(labels={"model": model_name, "source": source})
        self._gauge_set_at = 0.0

    def stage_finished(self, stage: str, seconds: float) -> None:
        self._metrics["latency", stage].observe(seconds)

    def stage_retried(self, stage: str) -> None:
        self._metrics["retries", stage].increment(1)

    def stage_failed(self, stage: str) -> None:
        self._metrics["failures", stage].increment(1)

    def category_corrected(self) -> None:
        self._metrics["corrections", None].increment(1)

    def category_routed(self, source: str) -> None:
        self._metrics["routes", source].increment(1)

    def values_dropped(self, count: int) -> None:
        self._metrics["dropped", None].increment(count)

    def inflight_changed(self, count: int) -> None:
        # Each metric update is a round trip to the Triton process, on the event loop that carries every product:
        # the gauge is sampled at most every GAUGE_INTERVAL_S, and always when the instance falls idle.
        now = time.monotonic()
        if count == 0 or now - self._gauge_set_at >= GAUGE_INTERVAL_S:
            self._gauge_set_at = now
            self._metrics["inflight", None].set(count)

    def request_refused(self, reason: str) -> None:
        self._metrics["refused", reason].increment(1)

    def result_cache_looked_up(self, hit: bool) -> None:
        self._metrics["result_cache", "hit" if hit else "miss"].increment(1)
