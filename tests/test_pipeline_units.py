"""Pipeline pieces without a server: output parsing, prompts, product checks, image guards, CPU engine."""

from __future__ import annotations

import asyncio
import json

import images
import pytest

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.chain import ChainSettings, ProductUnderstandingChain
from catalogvlm.pipeline.cpu.attributes import mentioned_values
from catalogvlm.pipeline.cpu.descriptions import simplify
from catalogvlm.pipeline.errors import InvalidInput, ModelOutputError, StageFailed
from catalogvlm.pipeline.images import decode_rgb, summarize
from catalogvlm.pipeline.limits import Limits, cut_at_word
from catalogvlm.pipeline.parsing import parse_json_object
from catalogvlm.pipeline.product import Product, product_from_raw


@pytest.mark.parametrize(
    "text",
    [
        '{"category": "A > B"}',
        'Sure! Here is the JSON:\n```json\n{"category": "A > B",}\n```\nAnything else?',
        'The answer is {"category": "A > B", "tags": ["x", "y",],} as requested.',
        '```\n{"category": "A > B"}\n```',
        '{"category": "A > B", "note": "braces } and \\" inside strings"}',
    ],
)
def test_parse_json_object_reads_what_models_write(text):
    assert parse_json_object(text, required=("category",))["category"] == "A > B"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"category": "A > B", "simplified_description": "A long', "truncated"),
        ("I cannot classify this product.", "no JSON object"),
        ('{"category": }', "not valid JSON"),
        ('{"other": 1}', "lacks category"),
    ],
)
def test_parse_json_object_refuses_what_it_cannot_read(text, problem):
    with pytest.raises(ModelOutputError, match=problem):
        parse_json_object(text, required=("category",))


def test_prompts_share_the_long_instructions_as_a_prefix(taxonomy):
    a = prompts.category_prompt(Product(title="Red Mug"))
    b = prompts.category_prompt(Product(title="Blue Sofa", image=b"x"))
    shared = common_prefix([a, b])
    assert shared.startswith("<|im_start|>system") and prompts.CATEGORY_TASK in shared
    assert len(shared) > 0.9 * len(a) - 40
    leggings = taxonomy.category("aa-1-1-1-2")
    c = prompts.attribute_prompt(Product(title="Red Mug"), leggings.full_name, leggings.attributes)
    d = prompts.attribute_prompt(Product(title="Blue Sofa"), leggings.full_name, leggings.attributes)
    assert prompts.ATTRIBUTE_TASK in common_prefix([c, d])
    assert prompts.IMAGE_PLACEHOLDER in b and prompts.IMAGE_PLACEHOLDER not in a


def test_prompt_blocks_round_trip(taxonomy):
    product = Product(title='Mug "Best" <b>', description="line 1\nline 2", tags="kitchen")
    prompt = prompts.category_prompt(product)
    assert prompts.product_from_prompt(prompt) == {
        "title": 'Mug "Best" <b>',
        "description": "line 1\nline 2",
        "tags": "kitchen",
    }


def test_product_validation_names_fields():
    limits = Limits(max_title_chars=10)
    assert product_from_raw({"title": b" Mug "}, None, limits).product.title == "Mug"
    with pytest.raises(InvalidInput, match=r"^title: is empty"):
        product_from_raw({"title": b""}, None, limits)
    with pytest.raises(InvalidInput, match=r"^title: is 11 characters long"):
        product_from_raw({"title": b"x" * 11}, None, limits)
    with pytest.raises(InvalidInput, match=r"^vendor: is not valid UTF-8"):
        product_from_raw({"title": b"Mug", "vendor": b"\xff"}, None, limits)
    with pytest.raises(InvalidInput, match=r"^tags: contains a NUL"):
        product_from_raw({"title": b"Mug", "tags": b"a\x00b"}, None, limits)


def test_images_are_normalised_to_rgb():
    limits = Limits()
    for data in (images.cmyk_jpeg(), images.rgba_png(), images.sixteen_bit_png(), images.product_photo(fmt="WEBP")):
        assert decode_rgb(data, limits).mode == "RGB"
    assert decode_rgb(images.exif_rotated_jpeg(), limits).size == (32, 64)
    transparent_corner = decode_rgb(images.rgba_png(), limits).getpixel((0, 0))
    assert transparent_corner == (255, 255, 255)
    sixteen = decode_rgb(images.sixteen_bit_png(), limits).getpixel((0, 0))
    assert sixteen[0] == round(40_000 * 255 / 65535)


def test_image_limits():
    with pytest.raises(InvalidInput, match="pixels; the limit is 1,000"):
        decode_rgb(images.product_photo(size=(50, 50)), Limits(max_image_pixels=1_000))
    with pytest.raises(InvalidInput, match="bytes; the limit is 10"):
        decode_rgb(images.product_photo(), Limits(max_image_bytes=10))


def test_dominant_colours_ignore_the_backdrop():
    summary = summarize(decode_rgb(images.product_photo((40, 90, 210)), Limits()), "JPEG")
    assert summary.dominant_colors == ("Blue",)
    assert summary.describe() == "A 400×300 JPEG image; dominant colours: blue."


def test_mentions_are_whole_words_from_the_menu_only():
    menu = [
        {"handle": "color", "values": ["Black", "Red", "Navy", "Other"]},
        {"handle": "size", "values": ["S", "M", "30", "Extra large (XL)"]},
        {"handle": "fabric", "values": ["Cotton", "Wool"]},
    ]
    found = mentioned_values(menu, {"title": "Redwood cotton tee, size M - $30", "description": "Other colours"})
    assert found == {"fabric": ["Cotton"]}
    assert mentioned_values(menu, {"title": "Tee"}, image_colors=["Navy", "Pink"]) == {"color": ["Navy"]}


def test_simplify_keeps_the_product_and_drops_policies():
    text = simplify("Mug", "Hand-glazed stoneware mug. Free shipping over $50! 30-day returns. Holds 350 ml.\nBuy now!")
    assert text == "Hand-glazed stoneware mug. Holds 350 ml."
    assert simplify("Mug", "") == "Mug"


def common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    length = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:length]


class ReplayEngine:
    """A `vlm` that replays answers: for unit-testing the chain's retry rules without a server."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    async def generate(self, prompt, image, max_tokens):
        self.prompts.append(prompt)
        return self.answers.pop(0)


def test_chain_retries_each_stage_on_its_own(taxonomy, corrector):
    engine = ReplayEngine(
        [
            "no json here",
            json.dumps({"category": "Apparel & Accessories > Clothing > Dresses", "simplified_description": "A dress"}),
            '{"attributes": {"color": ["Re',
            json.dumps({"attributes": {"color": ["Red", "Plaid-ish"]}}),
        ]
    )
    chain = ProductUnderstandingChain(taxonomy, engine, ChainSettings(max_retries_per_stage=1), corrector=corrector)
    prediction = asyncio.run(chain.run(Product(title="Red Dress"))).to_dict()
    assert prediction["retries"] == 2
    assert prediction["category"]["full_name"] == "Apparel & Accessories > Clothing > Dresses"
    assert [v["name"] for v in prediction["attributes"][0]["values"]] == ["Red"]
    assert [d["value"] for d in prediction["dropped_values"]] == ["Plaid-ish"]
    assert "<attribute_menu>" in engine.prompts[-1] and '"color"' in engine.prompts[-1]


def test_chain_fails_when_a_stage_exhausts_retries(taxonomy, corrector):
    engine = ReplayEngine(["{}", "{}"])
    chain = ProductUnderstandingChain(taxonomy, engine, ChainSettings(max_retries_per_stage=1), corrector=corrector)
    with pytest.raises(StageFailed, match="category failed after 2 attempts"):
        asyncio.run(chain.run(Product(title="Mug")))


def test_what_shopify_accepts_is_read_and_long_fields_are_cut_to_the_prompt_and_reported():
    tags = ", ".join(f"supplement tag {i}" for i in range(140))  # 2,500+ characters: a real store's tag list
    description = "Whole-food multivitamin. " * 400
    checked = product_from_raw(
        {"title": "T" * 255, "tags": tags, "description": description, "vendor": "V" * 255}, None, Limits()
    )
    assert checked.truncated_fields == ("description", "tags")
    assert len(checked.product.tags) <= 400 and tags.startswith(checked.product.tags)
    assert not tags[len(checked.product.tags)].isalnum()  # cut between words
    assert len(checked.product.description) <= 2_400 and checked.product.description.endswith("multivitamin.")
    assert product_from_raw({"title": "Mug", "tags": "mug"}, None, Limits()).truncated_fields == ()
    with pytest.raises(InvalidInput, match=r"^title: is 256 characters long; the limit is 255"):
        product_from_raw({"title": "T" * 256}, None, Limits())


@pytest.mark.parametrize(
    ("text", "limit", "cut"),
    [
        ("one two three", 9, "one two"),
        ("one two three", 13, "one two three"),
        ("abcdefghij", 4, "abcd"),
        ("one  two", 5, "one"),
    ],
)
def test_cut_at_word(text, limit, cut):
    assert cut_at_word(text, limit) == cut
