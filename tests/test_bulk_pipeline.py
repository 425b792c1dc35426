"""The bulk path: `catalogvlm batch` on Apache Beam against the real servers, and its streaming transforms.

Every input row must end in exactly one of predictions, carried-over or dead-letter, with its id."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_pipeline, test_stream
from apache_beam.testing.util import assert_that, equal_to
from images import product_photo

from catalogvlm.cli.main import main
from catalogvlm.client import CatalogError, ModelRelease, Product, ProductClassifier
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipelines import records, streams
from catalogvlm.pipelines.bulk import EMBED, Job, classify_updates, served_release
from catalogvlm.pipelines.inference import BatchOptions, ServerOptions

FLAKY = "product_understanding_flaky"  # the scripted engine (tests/engine_doubles.py): markers in titles
RELEASE = ModelRelease("product_understanding", "1", "2025-08", "0.1.0")


def test_a_product_id_is_the_id_field_else_the_handle():
    assert records.product_id({"id": 7, "handle": "mug"}, "id") == "7"
    assert records.product_id({"handle": "mug"}, "id") == "mug"
    assert records.product_id({"sku": "A-1", "handle": "mug"}, "sku") == "A-1"
    with pytest.raises(records.RowError, match=r"^INVALID_ARGUMENT: sku: is missing"):
        records.product_id({"handle": "mug"}, "sku")


def test_the_fingerprint_changes_with_what_the_answer_depends_on():
    texts = {"title": "Mug", "description": "", "product_type": "", "vendor": "", "tags": ""}
    base = records.fingerprint(texts, None, RELEASE)
    assert records.fingerprint(dict(reversed(texts.items())), None, RELEASE) == base  # field order is not content
    changed = [
        records.fingerprint({**texts, "tags": "gift"}, None, RELEASE),
        records.fingerprint(texts, "ab" * 32, RELEASE),
        records.fingerprint(texts, None, ModelRelease("product_understanding", "2", "2025-08", "0.1.0")),
        records.fingerprint(texts, None, ModelRelease("product_understanding", "1", "2025-09", "0.1.0")),
    ]
    assert len({base, *changed}) == 5


def test_stream_endpoints_are_parsed_or_refused():
    kafka = streams.parse_endpoint("kafka://broker-1:9092,broker-2:9092/catalog.updates")
    assert (kafka.address, kafka.name, kafka.topic("predictions")) == (
        "broker-1:9092,broker-2:9092",
        "catalog.updates",
        "catalog.updates.predictions",
    )
    pubsub = streams.parse_endpoint("pubsub://projects/shop/subscriptions/updates")
    assert (pubsub.kind, pubsub.name) == ("pubsub", "projects/shop/subscriptions/updates")
    for bad in ("kafka:/broker/topic", "mqtt://broker/topic", "kafka://broker"):
        with pytest.raises(ConfigurationError, match="a stream is kafka://"):
            streams.parse_endpoint(bad)


# --- against the real servers ---


def _catalog(folder: Path) -> Path:
    """Good products, products the server fails, and rows broken in every way a catalog export can be."""
    (folder / "images").mkdir()
    (folder / "images/red.jpg").write_bytes(product_photo())
    (folder / "images/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    rows = [
        *({"id": f"tee-{i}", "title": f"Cotton Tee {i}", "tags": ["summer", "cotton"]} for i in range(6)),
        {"id": "tee-photo", "title": "Red Tee", "image": "images/red.jpg"},
        {"id": "tee-retried", "title": "Bulk Tee [retry-once]"},
        {"handle": "tee-by-handle", "title": "Tee known by handle"},
        {"id": "tee-failing", "title": "Bulk Tee [fail-attributes]"},
        {"id": "no-title", "title": ""},
        {"id": "bad-image", "title": "Tee", "image": "images/broken.jpg"},
        {"id": "lost-image", "title": "Tee", "image": "images/missing.jpg"},
        {"title": "Tee without an id"},
    ]
    path = folder / "catalog.jsonl"
    lines = [json.dumps(row) for row in rows] + ["{not json"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _outputs(folder: Path) -> dict[str, list[dict]]:
    found = {}
    for name in records.OUTPUTS:
        lines = [line for path in sorted(folder.glob(f"{name}-*.jsonl")) for line in path.read_text().splitlines()]
        found[name] = [json.loads(line) for line in lines]
    return found


def _batch(capsys, url: str, catalog: Path, output: Path, *extra: str) -> dict:
    arguments = ["--url", url, "--input", str(catalog), "--output", str(output), "--retries", "1"]
    assert main(["batch", *arguments, *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def flaky_release(grpc_url) -> ModelRelease:
    return served_release(Job(ServerOptions(grpc_url, model_name=FLAKY), "", ""))


def test_every_row_ends_in_exactly_one_output_and_unchanged_products_are_carried_over(grpc_url, tmp_path, capsys):
    catalog = _catalog(tmp_path)
    flaky = ("--model-name", FLAKY)  # the scripted engine: failures on demand
    summary = _batch(capsys, grpc_url, catalog, tmp_path / "run1", *flaky)
    first = _outputs(tmp_path / "run1")
    assert summary | {"seconds": 0, "rows_per_s": 0} == {
        "rows": 15, "predicted": 9, "carried_over": 0, "dead_letter": 6, "unchanged_dropped": 0,
        "unaccounted": 0, "seconds": 0, "rows_per_s": 0,
    }  # fmt: skip
    predicted = {r["id"]: r for r in first["predictions"]}
    assert set(predicted) == {*(f"tee-{i}" for i in range(6)), "tee-photo", "tee-retried", "tee-by-handle"}
    assert predicted["tee-3"]["prediction"]["simplified_description"] == "Cotton Tee 3"
    assert predicted["tee-retried"]["prediction"]["retries"] == 1
    assert (predicted["tee-0"]["model"], predicted["tee-0"]["taxonomy_release"]) == (FLAKY, "2025-08-unstable")
    dead = {(r["id"], r["status"]): r["message"] for r in first["dead_letter"]}
    assert (
        set(dead)
        == {
            ("tee-failing", "UNAVAILABLE"),
            ("no-title", "INVALID_ARGUMENT"),
            ("bad-image", "INVALID_ARGUMENT"),
            ("lost-image", "INVALID_ARGUMENT"),
            (None, "INVALID_ARGUMENT"),  # no id, and not JSON: each is one dead letter with its source
        }
        and len(first["dead_letter"]) == 6
    )
    assert dead[("no-title", "INVALID_ARGUMENT")].startswith("title:")
    assert dead[("bad-image", "INVALID_ARGUMENT")].startswith("image:")
    assert "images/missing.jpg" in dead[("lost-image", "INVALID_ARGUMENT")]

    rows = [json.loads(line) if line.startswith('{"') else line for line in catalog.read_text().splitlines()]
    rows[1]["title"] = "Cotton Tee 1, now in linen"  # one product changed since the first run
    catalog.write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in rows) + "\n")
    summary = _batch(capsys, grpc_url, catalog, tmp_path / "run2", "--previous", str(tmp_path / "run1"), *flaky)
    second = _outputs(tmp_path / "run2")
    assert (summary["predicted"], summary["carried_over"], summary["dead_letter"]) == (1, 8, 6)
    assert [r["id"] for r in second["predictions"]] == ["tee-1"]
    carried = {r["id"]: r for r in second["carried_over"]}
    assert carried["tee-3"]["prediction"] == predicted["tee-3"]["prediction"]
    assert (
        carried["tee-3"]["predicted_at"] == predicted["tee-3"]["predicted_at"] and carried["tee-3"]["carried_over_at"]
    )


def test_parquet_output_and_csv_input_carry_over_from_each_other(grpc_url, tmp_path, capsys):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        'handle,title,description,tags\nmug,Ceramic Coffee Mug,"12 oz,\nstoneware",kitchen\nsocks,Wool Socks,,\n'
    )
    summary = _batch(capsys, grpc_url, catalog, tmp_path / "run1", "--format", "parquet")
    assert (summary["rows"], summary["predicted"], summary["dead_letter"]) == (2, 2, 0)
    assert list((tmp_path / "run1").glob("predictions-*.parquet"))
    summary = _batch(capsys, grpc_url, catalog, tmp_path / "run2", "--previous", str(tmp_path / "run1"))
    assert (summary["predicted"], summary["carried_over"]) == (0, 2)
    carried = _outputs(tmp_path / "run2")["carried_over"]
    assert {r["id"] for r in carried} == {"mug", "socks"} and all(r["prediction"]["category"]["id"] for r in carried)


def test_a_previous_folder_without_predictions_is_a_clear_error(grpc_url, tmp_path, capsys):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"id": "mug", "title": "Mug"}\n')
    arguments = ["--url", grpc_url, "--input", str(catalog), "--output", str(tmp_path / "out")]
    assert main(["batch", *arguments, "--previous", str(tmp_path)]) == 2
    assert "holds no predictions" in capsys.readouterr().err


def test_streaming_drops_unchanged_updates_and_predicts_the_rest(grpc_url, flaky_release):
    def update(product_id: str, title: str) -> bytes:
        return json.dumps({"id": product_id, "title": title}).encode()

    stream = (
        test_stream.TestStream()
        .add_elements([update("a", "Tee A"), update("a", "Tee A"), b"{broken", update("b", "Tee B [fail-attributes]")])
        .advance_watermark_to(10)
        .add_elements([update("a", "Tee A, new colour"), update("c", "Tee C")])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    job = Job(
        ServerOptions(grpc_url, model_name=FLAKY, retries=0),
        "test-stream",
        "",
        batching=BatchOptions(max_batch_size=4),
    )
    with test_pipeline.TestPipeline(options=options) as pipeline:
        outputs = classify_updates(pipeline | stream, job, flaky_release, source="test-stream")
        predicted = outputs["predictions"] | "Predicted" >> beam.Map(_id_and_description)
        failed = outputs["dead_letter"] | "Failed" >> beam.Map(lambda r: (r["id"], r["status"]))
        assert_that(predicted, equal_to([("a", "Tee A"), ("a", "Tee A, new colour"), ("c", "Tee C")]), "p")
        assert_that(failed, equal_to([(None, "INVALID_ARGUMENT"), ("b", "UNAVAILABLE")]), "d")


def _id_and_description(record: dict) -> tuple[str, str]:
    return record["id"], record["prediction"]["simplified_description"]


def test_an_identical_product_is_answered_from_the_result_cache_and_a_failure_never_is(server, grpc_url):
    product = Product(title="Stoneware Serving Bowl", description="Hand-glazed, 24 cm", tags="kitchen")
    hits = _cache_lookups(server, "hit")
    with ProductClassifier(grpc_url) as client:  # three calls: one of the two instances sees it twice
        first, *again = (client.classify(product) for _ in range(3))
    assert all(answer.raw == first.raw for answer in again)
    if server.backend == "triton":  # Dynamo's worker keeps no Triton metrics
        assert _cache_lookups(server, "hit") >= hits + 1
    with ProductClassifier(grpc_url, model_name=FLAKY, retries=0) as client:
        for _ in range(2):  # Triton's own response cache would answer the second with an empty success
            with pytest.raises(CatalogError) as failed:
                client.classify(Product(title="Cached Tee [fail-attributes]"))
            assert failed.value.status == "UNAVAILABLE"


def _cache_lookups(server, outcome: str) -> float:
    if server.backend != "triton":
        return 0.0
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    labels = f'model="product_understanding",outcome="{outcome}"'
    found = re.search(rf"^catalogvlm_result_cache_lookups_total\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_served_release_is_what_the_server_loaded(grpc_url, taxonomy):
    with ProductClassifier(grpc_url) as client:
        release = client.model_release()
    assert (release.model, release.version, release.taxonomy_release) == (
        "product_understanding",
        "1",
        taxonomy.version,
    )


# --- `catalogvlm embed` and `catalogvlm search` (product_embeddings: Triton) ---


def _embedded(folder: Path, name: str) -> dict[str, dict]:
    return {row["id"]: row for path in folder.glob(f"{name}-*.parquet") for row in pq.read_table(path).to_pylist()}


def test_embed_writes_vectors_carries_unchanged_products_and_search_finds_them(triton, tmp_path, capsys):
    (tmp_path / "mug.jpg").write_bytes(product_photo())
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    rows = [
        {"id": "mug", "title": "Red ceramic coffee mug", "image": "mug.jpg"},
        {"id": "boots", "title": "Waterproof hiking boots", "product_type": "Footwear"},
        {"id": "socks", "title": "Merino wool socks"},
        {"id": "no-title", "title": ""},
        {"id": "bad-image", "title": "Mug", "image": "broken.jpg"},
    ]
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    arguments = ["--url", triton.grpc_url, "--input", str(catalog), "--retries", "1"]
    assert main(["embed", *arguments, "--output", str(tmp_path / "run1")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["rows"], summary["predicted"], summary["dead_letter"], summary["unaccounted"]) == (5, 3, 2, 0)
    first = _embedded(tmp_path / "run1", "predictions")
    assert len(first["mug"]["text_vector"]) == 384 and len(first["mug"]["image_vector"]) == 1280
    assert first["boots"]["image_vector"] is None and first["boots"]["model"] == "product_embeddings"
    dead = {row["id"]: row["status"] for row in _embedded(tmp_path / "run1", "dead_letter").values()}
    assert dead == {"no-title": "INVALID_ARGUMENT", "bad-image": "INVALID_ARGUMENT"}

    rows[2]["title"] = "Merino wool hiking socks"  # changed since the first run
    catalog.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert main(["embed", *arguments, "--output", str(tmp_path / "run2"), "--previous", str(tmp_path / "run1")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["predicted"], summary["carried_over"]) == (1, 2)
    assert list(_embedded(tmp_path / "run2", "predictions")) == ["socks"]
    assert _embedded(tmp_path / "run2", "carried_over")["mug"]["text_vector"] == first["mug"]["text_vector"]

    assert main(["search", "--index", str(tmp_path / "run2"), "coffee cup", "--top-k", "2"]) == 0
    found = [line.split()[1] for line in capsys.readouterr().out.strip().splitlines()]
    assert found[0] == "mug" and len(found) == 2


def test_streaming_embeds_only_changed_updates(triton):
    def update(product_id: str, title: str) -> bytes:
        return json.dumps({"id": product_id, "title": title}).encode()

    stream = (
        test_stream.TestStream()
        .add_elements([update("a", "Mug"), update("a", "Mug"), update("b", "")])
        .advance_watermark_to(10)
        .add_elements([update("a", "Mug, blue")])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    server = ServerOptions(triton.grpc_url, model_name="product_embeddings", retries=0)
    job = Job(server, "test-stream", "", batching=BatchOptions(max_batch_size=4), operation=EMBED)
    with test_pipeline.TestPipeline(options=options) as pipeline:
        outputs = classify_updates(pipeline | stream, job, served_release(job), source="test-stream")
        embedded = outputs["predictions"] | "Embedded" >> beam.Map(
            lambda r: (r["id"], r["title"], len(r["text_vector"]))
        )
        failed = outputs["dead_letter"] | "Failed" >> beam.Map(lambda r: (r["id"], r["status"]))
        assert_that(embedded, equal_to([("a", "Mug", 384), ("a", "Mug, blue", 384)]), "e")
        assert_that(failed, equal_to([("b", "INVALID_ARGUMENT")]), "d")


def test_the_text_model_is_chosen_by_name_and_an_unknown_one_is_refused():
    from catalogvlm.pipeline.cpu.product_encoders import text_encoder

    encoder, width = text_encoder("use-multilingual-v3")
    vectors = encoder.encode(["vela aromática de soja", "scented soy candle", "hiking boots"])
    assert vectors.shape == (3, width) == (3, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # multilingual: the Spanish candle is the candle
    with pytest.raises(ConfigurationError, match="text_model 'bert' is not one of all-MiniLM-L6-v2"):
        text_encoder("bert")
