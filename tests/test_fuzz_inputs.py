"""Machine-made bad inputs against the request guards (no server): every outcome is a decoded image or
product, or INVALID_ARGUMENT naming the field; nothing else ever escapes."""

from __future__ import annotations

import fuzzing
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from catalogvlm.client import CatalogError, Product, wire
from catalogvlm.pipeline.contract import TEXT_FIELDS
from catalogvlm.pipeline.errors import InvalidInput
from catalogvlm.pipeline.images import decode_rgb
from catalogvlm.pipeline.limits import Limits
from catalogvlm.pipeline.product import product_from_raw

LIMITS = Limits(max_image_pixels=4_000_000)


@given(fuzzing.any_image_bytes())
@example(b"")
@example(b"\xff\xd8\xff\xe0" + bytes(200))  # a JPEG marker, then zeros
def test_any_image_bytes_decode_or_are_refused_naming_the_image(data):
    try:
        image = decode_rgb(data, LIMITS)
    except InvalidInput as error:
        assert str(error).startswith("image: ")
    else:
        assert image.mode == "RGB" and image.width * image.height <= LIMITS.max_image_pixels


@given(st.dictionaries(st.sampled_from(TEXT_FIELDS), st.binary(max_size=400)))
def test_any_field_bytes_make_a_product_or_are_refused_naming_the_field(raw):
    try:
        checked = product_from_raw(raw, None, Limits())
    except InvalidInput as error:
        assert error.field in TEXT_FIELDS and str(error).startswith(f"{error.field}: ")
    else:
        assert checked.product.title


@given(st.fixed_dictionaries({name: fuzzing.any_text for name in TEXT_FIELDS}))
def test_the_client_sends_any_text_or_refuses_it_as_the_server_would(fields):
    try:
        inputs = wire.product_inputs(Product(**fields), _FakeInput)
    except CatalogError as error:
        assert error.status == "INVALID_ARGUMENT" and error.message.split(":")[0] in TEXT_FIELDS
        return
    raw = {i.name: i.data[0] for i in inputs}
    try:
        product_from_raw(raw, None, Limits())
    except InvalidInput as error:
        assert error.field in TEXT_FIELDS


class _FakeInput:
    """tritonclient's InferInput, as far as wire.product_inputs uses it."""

    def __init__(self, name: str, shape: list[int], datatype: str) -> None:
        self.name = name

    def set_data_from_numpy(self, array) -> None:
        self.data = array.tolist()


@pytest.mark.parametrize("name", sorted(fuzzing.SEEDS))
def test_every_seed_image_is_accepted_unmutated(name):
    if name == "huge-declared":
        with pytest.raises(InvalidInput, match=r"^image: "):
            decode_rgb(fuzzing._SEED_BYTES[name], LIMITS)
    else:
        assert decode_rgb(fuzzing._SEED_BYTES[name], LIMITS).mode == "RGB"
