import collections

import pytest

from catalogvlm.taxonomy import TaxonomyInputError


def test_issue_example_smartwatch(corrector):
    answer = corrector.correct("Apparel & Accessories > Watches > Smartwatch")
    assert answer.full_name == "Apparel & Accessories > Jewelry > Smart Watches"
    assert answer.id == "gid://shopify/TaxonomyCategory/aa-6-12"
    assert answer.corrected and 0 < answer.score < 100


def test_valid_path_is_not_corrected(corrector, taxonomy):
    for category in list(taxonomy)[::500]:
        answer = corrector.correct(category.full_name)
        assert (answer.id, answer.score, answer.corrected) == (category.id, 100.0, False)


def test_valid_gid_is_not_corrected(corrector):
    answer = corrector.correct("gid://shopify/TaxonomyCategory/aa-6-12")
    assert (answer.full_name, answer.corrected) == ("Apparel & Accessories > Jewelry > Smart Watches", False)


def test_accuracy_on_realistic_mistakes(corrector, hallucinated_paths):
    assert len(hallucinated_paths) >= 100
    misses = [c for c in hallucinated_paths if corrector.correct(c["input"]).id != c["expected_id"]]
    assert len(misses) / len(hallucinated_paths) <= 0.08, [m["input"] for m in misses]


@pytest.mark.parametrize(
    "kind",
    ["and_for_ampersand", "case", "separator", "singular_plural", "missing_level", "extra_level", "id_typo"],
)
def test_every_mechanical_mistake_kind_is_fully_mended(corrector, hallucinated_paths, kind):
    cases = [c for c in hallucinated_paths if c["kind"] == kind]
    assert cases
    wrong = [(c["input"], corrector.correct(c["input"]).full_name) for c in cases]
    wrong = [(given, got) for (given, got), c in zip(wrong, cases, strict=True) if got != c["expected"]]
    assert not wrong


def test_hallucination_set_covers_many_verticals(hallucinated_paths):
    verticals = collections.Counter(c["expected"].split(" > ")[0] for c in hallucinated_paths)
    assert len(verticals) >= 15


def test_unknown_child_id_falls_back_to_parent_with_lower_score(corrector):
    answer = corrector.correct("aa-6-12-99")
    assert answer.id.endswith("/aa-6-12") and answer.corrected and answer.score < 100


def test_words_of_a_name_are_not_mistaken_for_an_id(corrector):
    assert (
        corrector.correct("Home & Garden > Decor > Picture Frame").full_name == "Home & Garden > Decor > Picture Frames"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("x" * 10_000, "10000 characters"),
        (b"Apparel \xff\xfe > Shoes", "not valid UTF-8"),
        (None, "must be text"),
        (" > > ", "no words"),
    ],
)
def test_bad_input_gets_a_clear_error(corrector, query, message):
    with pytest.raises(TaxonomyInputError, match=message):
        corrector.correct(query)


def test_utf8_bytes_are_accepted(corrector):
    assert corrector.correct(b"Apparel & Accessories > Shoes > Sneakers").corrected is False
