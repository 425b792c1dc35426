"""The serving path end to end: gRPC to a real tritonserver running the CPU profile."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import images
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from catalogvlm.client import AsyncProductClassifier, CatalogError, Product, ProductClassifier, wire
from catalogvlm.samples import demo_products

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def classifier(grpc_url):
    with ProductClassifier(grpc_url, retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def demo_predictions(classifier):
    products = demo_products()
    return list(zip(products, classifier.classify_many(products, concurrency=4, progress=False), strict=True))


def test_every_product_gets_a_valid_category_and_listed_values(demo_predictions, taxonomy):
    for product, prediction in demo_predictions:
        assert not isinstance(prediction, CatalogError), prediction
        category = taxonomy.get(prediction.category.id)
        assert category is not None and category.full_name == prediction.category.full_name
        menu = {a.id: {v.id for v in a.values} for a in category.attributes}
        for attribute in prediction.attributes:
            assert attribute.id in menu, (product.title, attribute.name)
            assert {v.id for v in attribute.values} <= menu[attribute.id]
        assert prediction.simplified_description
        assert bool(prediction.image_description) == (product.image is not None)
        assert prediction.retries == 0


def test_answers_are_sensible_for_known_products(demo_predictions):
    by_title = {product.title: prediction for product, prediction in demo_predictions}
    expectations = {
        "Men's Organic Cotton Crew Neck T-Shirt - Navy": "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",
        "Waterproof Hiking Backpack 40L": "Luggage & Bags > Backpacks",
        "Organic Lavender Soy Candle - 8 oz Amber Jar": "Home & Garden > Decor > Home Fragrances > Candles",
        "Vitamin C Brightening Face Serum 30 ml": "Health & Beauty > Personal Care > Cosmetics > Skin Care",
    }
    for title, expected_prefix in expectations.items():
        assert by_title[title].category.full_name.startswith(expected_prefix), title
    shirt = {a.handle: [v.name for v in a.values] for a in by_title[next(iter(expectations))].attributes}
    assert shirt["color"] == ["Navy"] and shirt["fabric"] == ["Cotton"]


def test_simplified_description_drops_store_boilerplate(demo_predictions):
    shirt = demo_predictions[0][1]
    assert "cotton" in shirt.simplified_description.lower()
    assert "shipping" not in shirt.simplified_description.lower()
    assert "return" not in shirt.simplified_description.lower()


def test_image_colour_fills_colour_attribute_when_text_names_none(classifier):
    prediction = classifier.classify(
        Product(title="Cotton T-Shirt", product_type="T-Shirt", image=images.product_photo((200, 30, 30)))
    )
    colors = {a.handle: [v.name for v in a.values] for a in prediction.attributes}.get("color")
    assert colors == ["Red"]
    assert "red" in prediction.image_description and "400×300" in prediction.image_description


def test_failed_stage_fails_the_whole_request_after_bounded_retries(grpc_url, server):
    """The same status and message through Triton and through Dynamo; Triton's metrics count the retries."""
    labels = 'model="product_understanding_flaky",stage="attributes"'
    before = _metric(server, "catalogvlm_stage_retries_total", labels)
    client = ProductClassifier(grpc_url, model_name="product_understanding_flaky", retries=0)
    with client, pytest.raises(CatalogError) as failure:
        client.classify(Product(title="Linen Shirt [fail-attributes]"))
    assert failure.value.status == "UNAVAILABLE"
    assert "attributes failed after 3 attempts" in failure.value.message
    assert "truncated" in failure.value.message
    if server.backend == "triton":
        assert _metric(server, "catalogvlm_stage_retries_total", labels) - before == 2
        assert _metric(server, "catalogvlm_stage_failures_total", labels) >= 1


def test_a_failed_stage_is_retried_by_the_client(grpc_url):
    """UNAVAILABLE is retryable: the client tries again (each attempt fails here), then reports it."""
    started = time.perf_counter()
    client = ProductClassifier(grpc_url, model_name="product_understanding_flaky", retries=2, backoff_s=0.2)
    with client, pytest.raises(CatalogError) as failure:
        client.classify(Product(title="Wool Coat [fail-attributes]"))
    assert failure.value.status == "UNAVAILABLE"
    assert time.perf_counter() - started >= 0.1 + 0.2  # two jittered backoffs (0.1-0.2, 0.2-0.4): it did retry


def test_a_retried_stage_is_reported_in_the_response(grpc_url):
    with ProductClassifier(grpc_url, model_name="product_understanding_flaky", retries=0) as client:
        prediction = client.classify(Product(title=f"Wool Scarf [retry-once] {time.time_ns()}"))
    assert prediction.retries == 1
    assert prediction.category.id.startswith("gid://shopify/TaxonomyCategory/")


BAD_PRODUCTS = [
    (Product(title=""), "title: is empty"),
    (Product(title="   "), "title: is empty"),
    (Product(title="x" * 256), "title: is 256 characters long; the limit is 255"),
    (Product(title="Mug", description="d" * 524_289), "description: is 524,289 characters long"),
    (Product(title="Mug", tags="t" * 64_251), "tags: is 64,251 characters long; the limit is 64,250"),
    (Product(title="Mug", image=b"definitely not an image"), "image: is not a readable JPEG, PNG, GIF or WebP"),
    (Product(title="Mug", image=images.jpeg_header_then_noise()), "image: is not a readable JPEG, PNG, GIF or WebP"),
    (Product(title="Mug", image=images.product_photo()[:9]), "image: is truncated or corrupt (OSError: Truncated"),
    (Product(title="Mug", image=b""), "image: is empty"),
    (Product(title="Mug", image=images.truncated_jpeg()), "image: is truncated or corrupt"),
    (Product(title="Mug", image=images.decompression_bomb_png()), "image: is 8000×8000 = 64,000,000 pixels"),
]


@pytest.mark.parametrize(("product", "message"), BAD_PRODUCTS, ids=lambda v: str(v)[:40])
def test_bad_products_get_invalid_argument_naming_the_field(classifier, product, message):
    with pytest.raises(CatalogError) as failure:
        classifier.classify(product)
    assert failure.value.status == "INVALID_ARGUMENT"
    assert message in failure.value.message
    assert "Traceback" not in failure.value.message
    assert classifier.classify(Product(title="Ceramic Coffee Mug")).category.full_name  # still serving


def test_oversized_image_is_refused_with_a_clear_error(classifier, server):
    """Triton applies our limit; Dynamo 1.6.1's KServe frontend refuses any request over 4 MiB first."""
    with pytest.raises(CatalogError) as failure:
        classifier.classify(Product(title="Mug", image=b"\xff" * (10 * 1024 * 1024 + 1)))
    if server.backend == "triton":
        assert failure.value.status == "INVALID_ARGUMENT"
        assert "image: is 10,485,761 bytes; the limit is 10,485,760" in failure.value.message
    else:
        assert failure.value.status == "OUT_OF_RANGE"
        assert "decoded message length too large" in failure.value.message
    assert classifier.classify(Product(title="Ceramic Coffee Mug")).category.full_name  # still serving


def _raw_error(grpc_url, inputs) -> CatalogError:
    """The error a raw request gets, as the client library reports it (the same for Triton and Dynamo)."""
    with grpcclient.InferenceServerClient(grpc_url) as client, pytest.raises(InferenceServerException) as failure:
        client.infer("product_understanding", inputs)
    return wire.as_catalog_error(failure.value)


def test_non_utf8_text_is_invalid_argument(grpc_url):
    title = grpcclient.InferInput("title", [1], "BYTES")
    title.set_data_from_numpy(np.array([b"Caf\xe9 mug"], dtype=np.object_))
    error = _raw_error(grpc_url, [title])
    assert error.status == "INVALID_ARGUMENT"
    assert "title: is not valid UTF-8 (byte 3)" in error.message


def test_wrong_dtype_is_rejected_naming_the_input(grpc_url):
    title = grpcclient.InferInput("title", [1], "INT32")
    title.set_data_from_numpy(np.array([7], dtype=np.int32))
    error = _raw_error(grpc_url, [title])
    assert error.status == "INVALID_ARGUMENT"
    assert "title" in error.message and "INT32" in error.message


def test_wrong_shape_is_rejected_naming_the_input(grpc_url):
    title = grpcclient.InferInput("title", [2], "BYTES")
    title.set_data_from_numpy(np.array([b"a", b"b"], dtype=np.object_))
    error = _raw_error(grpc_url, [title])
    assert error.status == "INVALID_ARGUMENT"
    assert "title" in error.message


def test_missing_title_is_rejected(grpc_url):
    description = grpcclient.InferInput("description", [1], "BYTES")
    description.set_data_from_numpy(np.array([b"no title"], dtype=np.object_))
    error = _raw_error(grpc_url, [description])
    assert error.status == "INVALID_ARGUMENT"
    assert "title" in error.message


@pytest.mark.parametrize(
    "image",
    [images.cmyk_jpeg(), images.rgba_png(), images.sixteen_bit_png(), images.exif_rotated_jpeg(), images.gif()],
    ids=["cmyk", "rgba", "16-bit", "exif-rotated", "gif"],
)
def test_awkward_but_valid_images_are_accepted(classifier, image):
    prediction = classifier.classify(Product(title="Cotton Tote Bag", image=image))
    assert prediction.image_description.startswith("A ")


def test_parallel_requests_are_consistent(classifier):
    products = [Product(title="Stainless Steel Water Bottle 750 ml", description="Keeps drinks cold 24 hours")] * 16
    products += [Product(title="Men's Leather Hiking Boots", product_type="Boots")] * 8
    with ThreadPoolExecutor(max_workers=24) as pool:
        predictions = list(pool.map(classifier.classify, products))
    bottles = {p.raw["category"]["id"] for p in predictions[:16]}
    boots = {p.raw["category"]["id"] for p in predictions[16:]}
    assert len(bottles) == 1 and len(boots) == 1 and bottles != boots
    assert len({repr(p.raw) for p in predictions[:16]}) == 1


def test_async_client_classifies_many(grpc_url):
    async def run():
        async with AsyncProductClassifier(grpc_url) as client:
            return await client.classify_many(
                [Product(title="Yoga Mat 6mm"), Product(title=""), Product(title="Dog Leash")], progress=False
            )

    mat, empty, leash = asyncio.run(run())
    assert "Yoga" in mat.category.full_name
    assert isinstance(empty, CatalogError) and empty.status == "INVALID_ARGUMENT"
    assert "Leash" in leash.category.full_name


def test_taxonomy_validate_model(classifier):
    results = classifier.validate_categories(["Apparel & Accessories > Watches > Smartwatch", "aa-1-4"])
    assert [r.full_name for r in results] == [
        "Apparel & Accessories > Jewelry > Smart Watches",
        "Apparel & Accessories > Clothing > Dresses",
    ]
    assert results[0].corrected
    with pytest.raises(CatalogError) as failure:
        classifier.validate_categories(["Furniture > Sofas", ""])
    assert failure.value.status == "INVALID_ARGUMENT" and "category[1]: category path is empty" in failure.value.message


def test_model_metadata_is_the_triton_contract(grpc_url):
    with grpcclient.InferenceServerClient(grpc_url) as client:
        metadata = client.get_model_metadata("product_understanding", as_json=True)
    inputs = {i["name"]: (i["datatype"], i["shape"]) for i in metadata["inputs"]}
    assert inputs["title"] == ("BYTES", ["1"]) and inputs["image"] == ("UINT8", ["-1"])
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [("result", "BYTES")]


def test_metrics_are_exposed(triton, classifier):
    classifier.classify(Product(title="Apparel and Accessories > Shoes > Sneakers"))
    text = urllib.request.urlopen(triton.metrics_url, timeout=10).read().decode()
    assert re.search(r'nv_inference_request_success\{model="product_understanding",version="1"\} [1-9]', text)
    for family in (
        "catalogvlm_category_corrections_total",
        "catalogvlm_dropped_attribute_values_total",
        "catalogvlm_stage_retries_total",
        "catalogvlm_stage_failures_total",
        "catalogvlm_stage_latency_seconds_bucket",
    ):
        assert family in text
    assert (
        _metric(triton, "catalogvlm_stage_latency_seconds_count", 'model="product_understanding",stage="category"') > 0
    )


def test_the_cascade_answers_stage_1_from_retrieval_and_calls_the_vlm_once(grpc_url, server):
    """At cascade_threshold 0 every category comes from retrieval; the scripted `vlm` (whose own stage 1 would
    answer T-Shirts) sees stage 2 only, and Triton counts one call and the route."""
    routes = 'model="product_understanding_cascade",source="retrieval"'
    calls = 'model="scripted_vlm",version="1"'
    before = (_metric(server, "catalogvlm_category_routes_total", routes), _metric(server, NV_SUCCESS, calls))
    with ProductClassifier(grpc_url, model_name="product_understanding_cascade", retries=0) as client:
        prediction = client.classify(Product(title="Lavender soy candle", description="Hand-poured. Ships in 2 days."))
    assert prediction.category.source == "retrieval" and prediction.category.full_name.endswith("Candles")
    assert 0.0 <= prediction.category.confidence <= 1.0
    assert prediction.simplified_description == "Hand-poured."  # the CPU description step's, boilerplate dropped
    assert [a.handle for a in prediction.attributes] == ["color"]  # stage 2 still came from the scripted engine
    if server.backend == "triton":
        after = (_metric(server, "catalogvlm_category_routes_total", routes), _metric(server, NV_SUCCESS, calls))
        assert after[0] - before[0] == 1 and after[1] - before[1] == 1


def test_the_bls_speaks_nvidias_llmapi_tensors_to_the_gpu_profiles_vlm(triton):
    """The gpu profile's `vlm` is NVIDIA's LLM-API model, rendered as that profile renders it (its config.pbtxt and
    model.yaml); a stand-in model.py checks each request as NVIDIA's model reads it: one prompt, the product's image
    as a data: URI whose key the prompt carries, greedy sampling, max_tokens. Both stages go through it."""
    calls = 'model="llmapi_vlm",version="1"'
    before = _metric(triton, NV_SUCCESS, calls)
    with ProductClassifier(triton.grpc_url, model_name="product_understanding_llmapi", retries=0) as client:
        photo = client.classify(Product(title="Linen shirt", image=images.product_photo(fmt="PNG")))
        text_only = client.classify(Product(title="Linen shirt, no photo"))
    assert photo.category.full_name.endswith("T-Shirts") and photo.image_description == "image/png via image_url"
    assert [a.handle for a in photo.attributes] == ["color"] and text_only.image_description == ""
    assert _metric(triton, NV_SUCCESS, calls) - before == 4  # two stages of two products


def test_product_embeddings_are_unit_vectors_that_find_similar_products(triton):
    """product_embeddings (every profile; Triton): a text vector for every product, an image vector with an image,
    named encoders; similar products are nearer; bad input is refused by field and the model keeps serving."""
    with ProductClassifier(triton.grpc_url, retries=0) as client:
        mug = client.embed(Product(title="Red ceramic coffee mug", image=images.product_photo()))
        cup = client.embed(Product(title="Ceramic tea cup", product_type="Mugs"))
        boots = client.embed(Product(title="Waterproof hiking boots", product_type="Footwear"))
        with pytest.raises(CatalogError) as caught:
            client.embed(Product(title="Mug", image=images.product_photo()[:9]))
        assert caught.value.status == "INVALID_ARGUMENT" and caught.value.message.startswith("image: ")
        again = client.embed(Product(title="Red ceramic coffee mug", image=images.product_photo()))
    assert (mug.text.shape, mug.image.shape, cup.image) == ((384,), (1280,), None)
    assert abs(float(mug.text @ mug.text) - 1) < 1e-5 and abs(float(mug.image @ mug.image) - 1) < 1e-5
    assert float(mug.text @ cup.text) > float(mug.text @ boots.text) + 0.1
    assert np.allclose(again.text, mug.text, atol=1e-6) and np.allclose(again.image, mug.image, atol=1e-6)
    assert (mug.text_model, mug.image_model) == ("all-MiniLM-L6-v2", "efficientnet-lite0-imagenet")


def test_the_default_route_is_the_vlm_with_a_grounded_prompt(classifier, server):
    prediction = classifier.classify(Product(title="Merino wool hiking socks"))
    assert prediction.category.source == "vlm"
    if server.backend == "triton":
        assert _metric(server, "catalogvlm_category_routes_total", 'model="product_understanding",source="vlm"') >= 1


def test_category_candidates_model_answers_its_own_requests(grpc_url):
    """The retrieval step is a model of its own on both servers: top-K taxonomy paths for a product, bad input
    named."""
    with grpcclient.InferenceServerClient(grpc_url) as client:
        inputs = [_text_input("title", "Lavender soy candle"), _int_input("top_k", 5)]
        answer = client.infer("category_candidates", inputs).as_numpy("candidates")[0, 0]
        candidates = json.loads(answer)["candidates"]
        assert len(candidates) == 5 and candidates[0]["category"].endswith("Candles")
        with pytest.raises(InferenceServerException, match="top_k: is 0; ask for 1 to 100"):
            client.infer("category_candidates", [_text_input("title", "Mug"), _int_input("top_k", 0)])
        with pytest.raises(InferenceServerException, match="title: is empty"):
            client.infer("category_candidates", [_text_input("title", " ")])


def test_the_vlm_model_classifies_an_ungrounded_prompt_itself(triton):
    """Behind the grounding chain the CPU engine finds its answers in the prompts and builds no classifier at
    startup; a client calling `vlm` directly with a bare category prompt still gets one (built on this request)."""
    from catalogvlm.pipeline import prompts
    from catalogvlm.pipeline.product import Product as PipelineProduct

    prompt = prompts.category_prompt(PipelineProduct(title="Organic Lavender Soy Candle - 8 oz Amber Jar"))
    with grpcclient.InferenceServerClient(triton.grpc_url) as client:
        answer = client.infer("vlm", [_text_input("text_input", prompt)]).as_numpy("text_output")[0, 0]
    assert json.loads(answer)["category"] == "Home & Garden > Decor > Home Fragrances > Candles"


NV_SUCCESS = "nv_inference_request_success"


def _text_input(name: str, value: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[value.encode()]], dtype=np.object_))
    return tensor


def _int_input(name: str, value: int) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, [1, 1], "INT32")
    tensor.set_data_from_numpy(np.array([[value]], dtype=np.int32))
    return tensor


def _metric(server, name: str, labels: str) -> float:
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, flags=re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_heavily_tagged_product_is_classified_and_the_cut_reported(classifier):
    """Supplement shops tag heavily: 2,300+ characters of tags are within Shopify's limits, so never refused."""
    tags = ", ".join(f"vitamin d3 {i} iu immune support vegan gluten free" for i in range(50))
    assert len(tags) > 2_300
    prediction = classifier.classify(Product(title="Vitamin D3 5000 IU Softgels", tags=tags))
    assert prediction.truncated_fields == ("tags",)
    assert prediction.category.id.startswith("gid://shopify/TaxonomyCategory/")
