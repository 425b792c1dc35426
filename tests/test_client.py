"""The client's own rules: which errors are retried, and how Dynamo's folded errors are read."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from catalogvlm.client import CatalogError, Product
from catalogvlm.client.base import BaseClassifier
from catalogvlm.client.wire import as_catalog_error
from catalogvlm.pipeline import contract


class Offline(BaseClassifier):
    @staticmethod
    def _connect(url, tls):
        return None


def test_only_unavailable_is_retried_with_backoff():
    client = Offline("127.0.0.1:1", retries=2, backoff_s=0.1)
    unavailable = CatalogError("UNAVAILABLE", "attributes failed after 3 attempts")
    first, second, last = (client._retry_delay(unavailable, attempt) for attempt in range(3))
    assert 0.05 <= first <= 0.1 and 0.1 <= second <= 0.2 and last is None  # exponential, jittered below each step
    assert client._retry_delay(CatalogError("INVALID_ARGUMENT", "title: is empty"), 0) is None
    assert client._retry_delay(CatalogError("DEADLINE_EXCEEDED", "slow"), 0) is None


def test_dynamo_folded_invalid_request_reads_as_invalid_argument():
    folded = InferenceServerException(
        "Failed to fold completions stream: InvalidRequest: title: is empty; every product needs a title",
        status="StatusCode.INTERNAL",
    )
    error = as_catalog_error(folded)
    assert (error.status, error.message) == ("INVALID_ARGUMENT", "title: is empty; every product needs a title")
    other = as_catalog_error(InferenceServerException("boom", status="StatusCode.INTERNAL"))
    assert (other.status, other.message) == ("INTERNAL", "boom")
    triton = as_catalog_error(InferenceServerException("image: is truncated", status="StatusCode.INVALID_ARGUMENT"))
    assert triton.status == "INVALID_ARGUMENT"


# How Dynamo 1.6.1's KServe frontend names the worker's error class in its INTERNAL message (observed).
FOLDED_NAMES = {"InvalidArgument": "InvalidRequest", "Unknown": "Internal"}


@pytest.mark.parametrize("status", ["INVALID_ARGUMENT", "UNAVAILABLE", "INTERNAL"])
def test_every_status_survives_the_trip_through_dynamo(status):
    class_name, message = contract.dynamo_error(status, "attributes failed after 3 attempts: truncated")
    folded = f"Failed to fold completions stream: {FOLDED_NAMES[class_name]}: {message}"
    error = as_catalog_error(InferenceServerException(folded, status="StatusCode.INTERNAL"))
    assert (error.status, error.message) == (status, "attributes failed after 3 attempts: truncated")


def test_product_records_and_text_fields(tmp_path):
    (tmp_path / "p.png").write_bytes(b"png bytes")
    product = Product.from_record({"title": "Mug", "tags": ["kitchen", "gift"], "image": "p.png"}, tmp_path)
    assert product.tags == "kitchen, gift" and product.image == b"png bytes"
    assert product.text_fields() == {"title": "Mug", "tags": "kitchen, gift"}


@pytest.mark.parametrize(
    "message",
    [
        "Stub process 'product_understanding_0_1' is not healthy.",  # Triton: a Python-backend stub was killed
        "Failed to fold completions stream: Unavailable: Stream ended before generation completed",  # Dynamo
    ],
)
def test_a_request_whose_model_process_died_is_retryable(message):
    assert as_catalog_error(InferenceServerException(message, status="StatusCode.INTERNAL")).status == "UNAVAILABLE"
    assert as_catalog_error(InferenceServerException("boom", status="StatusCode.INTERNAL")).status == "INTERNAL"


def test_a_deadline_the_server_enforced_reads_as_deadline_exceeded():
    """Dynamo's tonic frontend ends a call whose grpc-timeout passed as CANCELLED 'Timeout expired'."""
    expired = InferenceServerException("Timeout expired", status="StatusCode.CANCELLED")
    assert as_catalog_error(expired).status == "DEADLINE_EXCEEDED"
    cancelled = InferenceServerException("Locally cancelled by application!", status="StatusCode.CANCELLED")
    assert as_catalog_error(cancelled).status == "CANCELLED"
