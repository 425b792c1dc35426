"""Machine-made bad inputs against the real servers (Triton and Dynamo): every response is a valid prediction
or INVALID_ARGUMENT naming the field, never INTERNAL or UNKNOWN, never a hang, and the server keeps serving."""

from __future__ import annotations

import fuzzing
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from catalogvlm.client import CatalogError, Prediction, Product, ProductClassifier, wire
from catalogvlm.pipeline.contract import IMAGE_INPUT_NAME, PRODUCT_MODEL, TEXT_FIELDS

pytestmark = pytest.mark.server
FIELDS = (*TEXT_FIELDS, IMAGE_INPUT_NAME)


@pytest.fixture(scope="module")
def classifier(grpc_url):
    with ProductClassifier(grpc_url, retries=0, timeout_s=60) as client:
        yield client


def _answered_or_refused_by_field(outcome: Prediction | CatalogError) -> None:
    if isinstance(outcome, CatalogError):
        assert outcome.status == "INVALID_ARGUMENT", outcome
        assert outcome.message.split(":")[0].split("[")[0] in FIELDS, outcome
    else:
        assert outcome.category.id.startswith("gid://shopify/TaxonomyCategory/")


@settings(max_examples=fuzzing.SERVING_EXAMPLES)
@given(
    title=fuzzing.any_text,
    description=fuzzing.any_text,
    tags=fuzzing.any_text,
    image=st.none() | fuzzing.any_image_bytes(),
)
def test_fuzzed_products_are_answered_or_refused_naming_the_field(classifier, title, description, tags, image):
    try:
        outcome = classifier.classify(Product(title=title, description=description, tags=tags, image=image))
    except CatalogError as error:
        outcome = error
    _answered_or_refused_by_field(outcome)


TENSOR_TYPES = {"BYTES": np.object_, "UINT8": np.uint8, "INT32": np.int32, "FP32": np.float32}


@st.composite
def raw_tensors(draw: st.DrawFn) -> list[grpcclient.InferInput]:
    """Tensors of any declared or undeclared name, data type and shape, title possibly missing."""
    names = draw(st.lists(st.sampled_from([*FIELDS, "colour", "product"]), min_size=0, max_size=4, unique=True))
    inputs = []
    for name in names:
        datatype = draw(st.sampled_from(sorted(TENSOR_TYPES)))
        shape = draw(st.sampled_from([[1], [2], [1, 1], [0]]))
        size = int(np.prod(shape))
        if datatype == "BYTES":
            values = np.array([draw(st.binary(max_size=40)) for _ in range(size)], dtype=np.object_).reshape(shape)
        else:
            values = np.zeros(shape, dtype=TENSOR_TYPES[datatype])
        tensor = grpcclient.InferInput(name, shape, datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


@settings(max_examples=fuzzing.SERVING_EXAMPLES)
@given(raw_tensors())
def test_fuzzed_tensors_are_answered_or_refused(grpc_url, inputs):
    with grpcclient.InferenceServerClient(grpc_url) as client:
        try:
            client.infer(PRODUCT_MODEL, inputs, client_timeout=60)
        except InferenceServerException as raw:
            error = wire.as_catalog_error(raw)
            assert error.status == "INVALID_ARGUMENT", error
            assert "Traceback" not in error.message


def test_the_server_still_serves_after_the_fuzzing(classifier):
    assert classifier.is_ready()
    assert classifier.classify(Product(title="Ceramic Coffee Mug")).category.full_name
