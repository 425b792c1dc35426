"""Hierarchical metrics, checked by hand, and `catalogvlm eval` against the real server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from catalogvlm.evaluation.metrics import (
    attributes_by_handle,
    by_vertical,
    false_values,
    lineage,
    on_category,
    relation,
    score,
    score_attributes,
    vertical_confusion,
)
from catalogvlm.evaluation.report import write_attribute_report

GID = "gid://shopify/TaxonomyCategory/"


def test_lineage_from_ids():
    assert lineage(GID + "aa-1-13-8") == ("aa", "aa-1", "aa-1-13", "aa-1-13-8")
    assert lineage("gc") == ("gc",)


def test_hand_checked_scores():
    pairs = [
        ("aa-1-13-8", "aa-1-13-8"),  # exact: shared 4, |p| 4, |t| 4
        ("aa-1", "aa-1-13-8"),  # coarser: shared 2, |p| 2, |t| 4
        ("aa-1-13-8", "aa-1"),  # finer: shared 2, |p| 4, |t| 2
        ("el-4", "aa-6-12"),  # wrong vertical: shared 0, |p| 2, |t| 3
    ]
    s = score(pairs)
    assert s.n == 4
    assert s.exact == pytest.approx(1 / 4)
    assert s.top_level == pytest.approx(3 / 4)
    assert s.hP == pytest.approx(8 / 12)  # (4 + 2 + 2 + 0) / (4 + 2 + 4 + 2)
    assert s.hR == pytest.approx(8 / 13)  # (4 + 2 + 2 + 0) / (4 + 4 + 2 + 3)
    assert s.hF1 == pytest.approx(2 * (8 / 12) * (8 / 13) / (8 / 12 + 8 / 13))


def test_perfect_and_empty():
    assert score([("hg-1", "hg-1")]).hF1 == 1.0
    assert score([]).n == 0


def test_relations():
    assert relation("aa-1", "aa-1") == "exact"
    assert relation("aa-1", "aa-1-13") == "ancestor"
    assert relation("aa-1-13", "aa-1") == "descendant"
    assert relation("aa-2", "aa-1") == "same_vertical"
    assert relation("el", "aa-1") == "wrong_vertical"
    assert relation("aa-1-1", "aa-1-13") == "same_vertical"  # "aa-1-1" is not a prefix of "aa-1-13"


def test_per_vertical_and_confusion():
    pairs = [("aa-1", "aa-1"), ("el-1", "aa-2"), ("fr-1", "fr-1-2")]
    assert set(by_vertical(pairs)) == {"aa", "fr"}
    assert by_vertical(pairs)["aa"].top_level == 0.5
    assert vertical_confusion(pairs)[("aa", "el")] == 1


EASY_ROWS = [
    f"Men's Cotton Crew Neck T-Shirt,,,T-Shirt,,{GID}aa-1-13-8",
    f"Stainless Steel French Press,Coffee maker,,,,{GID}hg-11-7",
    f"Oak Dining Table,Seats six,,Table,,{GID}fr-22",
    f"Lavender Soy Candle,,,,,{GID}hg-3-26-2",
]


def _labelled_csv(folder, rows: list[str]):
    data = folder / "labelled.csv"
    data.write_text("title,description,vendor,product_type,tags,label_shopify_gid\n" + "\n".join(rows) + "\n")
    return data


@pytest.mark.server
def test_eval_command_prints_metrics_and_writes_report(grpc_url, tmp_path):
    data = _labelled_csv(tmp_path, EASY_ROWS)
    report = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "catalogvlm.cli", "eval", "--url", grpc_url, str(data), "--report", str(report)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"n", "exact", "top_level", "hP", "hR", "hF1", "corrected_rate", "products_per_s"}
    assert summary["n"] == 4 and summary["failed"] == 0
    assert summary["top_level"] >= 0.75  # these four are easy
    for name in ("per_vertical.csv", "vertical_confusion.csv", "worst_misses.csv", "per_vertical.png"):
        assert (report / name).stat().st_size > 0
    assert (report / "per_vertical.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.server
def test_eval_through_the_bulk_pipeline_scores_the_same(grpc_url, tmp_path):
    """`--runner` sends the rows through `catalogvlm batch`'s Beam pipeline: same answers, same scores."""
    data = _labelled_csv(tmp_path, [*EASY_ROWS[1:3], f",a row without a title,,,,{GID}fr-22"])
    scores = []
    for extra in ([], ["--runner", "DirectRunner", "--direct_num_workers", "1"]):
        command = [sys.executable, "-m", "catalogvlm.cli", "eval", "--url", grpc_url, str(data), *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 1, done.stderr  # the row without a title fails, in both
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        scores.append({key: summary[key] for key in ("n", "exact", "hF1", "failed")})
    assert scores[0] == scores[1] and scores[0]["failed"] == 1


def test_attribute_scores_count_only_the_attributes_the_merchant_labelled():
    products = [
        # color: 1 of 2 predicted right, 1 of 2 labelled found; pattern predicted but not labelled: not scored
        (
            {"color": {"color__red", "color__blue"}, "pattern": {"pattern__solid"}},
            {"color": ["color__red", "color__green"]},
        ),
        # material labelled, nothing predicted: recall falls, precision does not
        ({}, {"material": ["material__cotton"]}),
        ({"size": {"size__m"}}, {"size": ["size__m"], "color": []}),  # an empty label is no label
    ]
    scores = score_attributes(products)
    assert (scores.pairs, scores.predicted, scores.labelled, scores.correct) == (3, 3, 4, 2)
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 4)
    assert scores.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert false_values(products) == {("color", "color__blue"): 1}  # pattern was not labelled: not false
    per_attribute = attributes_by_handle(products)
    assert set(per_attribute) == {"color", "material", "size"}
    assert (per_attribute["material"].recall, per_attribute["material"].precision) == (0.0, 0.0)
    assert per_attribute["size"].f1 == 1.0


def test_on_category_scores_keep_only_the_attributes_the_labelled_category_lists():
    products = [
        # vehicle-type is labelled but its category (say, vehicle parts) lists only color: out of reach
        ({"color": {"color__black"}}, {"color": ["color__black"], "vehicle-type": ["vehicle-type__motorcycle"]}),
        ({}, {"color": ["color__red"]}),  # no known category: nothing on it
    ]
    kept = on_category(products, [{"color"}, set()])
    assert kept == [({"color": {"color__black"}}, {"color": ["color__black"]}), ({}, {})]
    everything, reachable = score_attributes(products), score_attributes(kept)
    assert (everything.labelled, everything.recall) == (3, pytest.approx(1 / 3))
    assert (reachable.pairs, reachable.labelled, reachable.recall) == (1, 1, 1.0)


@pytest.mark.server
def test_eval_reads_jsonl_and_scores_attribute_values(grpc_url, tmp_path):
    rows = [
        {"title": "Red cotton t-shirt", "tags": ["tee", "summer"], "category_gid": f"{GID}aa-1-13-8",
         "attributes": {"color": ["color__red"], "fabric": ["fabric__cotton"]}},
        {"title": "Lavender Soy Candle", "tags": [], "category_gid": f"{GID}hg-3-26-2", "attributes": {}},
    ]  # fmt: skip
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report = tmp_path / "report"
    command = [sys.executable, "-m", "catalogvlm.cli", "eval", "--url", grpc_url, str(data), "--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["attributes"]["pairs"] == 2
    assert summary["attributes_on_category"]["pairs"] == 2  # a t-shirt's category lists colour and fabric
    assert 0.0 <= summary["attributes"]["precision"] <= 1.0 and 0.0 <= summary["attributes"]["recall"] <= 1.0
    lines = (report / "attributes.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("attribute,pairs,predicted,labelled,correct") and len(lines) == 3
    verticals = (report / "attributes_per_vertical.csv").read_text(encoding="utf-8").splitlines()
    assert verticals[1:] == [verticals[1]] and verticals[1].startswith("Apparel & Accessories,2,")  # not the candle
    assert (report / "false_values.csv").read_text(encoding="utf-8").startswith("attribute,value,")


def test_attribute_report_splits_scores_by_how_the_predicted_category_relates_to_the_label(tmp_path):
    values = [
        ({"color": {"color__red"}}, {"color": ["color__red"]}),  # the right category: its menu had the value
        ({}, {"color": ["color__blue"]}),  # a candle for a t-shirt: nothing to answer from
        ({"color": {"color__red"}}, {"color": ["color__red", "color__green"]}),  # a coarser category
    ]
    labels = [("aa-1-13-8", "aa-1-13-8"), ("hg-3-26-2", "aa-1-13-8"), ("aa-1-13", "aa-1-13-8")]
    write_attribute_report(tmp_path, values, labels, {"aa": "Apparel & Accessories"})
    rows = (tmp_path / "attributes_per_category_relation.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("predicted category,pairs,predicted,labelled,correct")
    assert sorted(rows[1:]) == [
        "ancestor,1,1,2,1,1.0000,0.5000,0.6667",
        "exact,1,1,1,1,1.0000,1.0000,1.0000",
        "wrong_vertical,1,0,1,0,0.0000,0.0000,0.0000",
    ]
