"""Stage 2's implied values: ages the text states read against the taxonomy's own age lists, colour words inside
hyphenated compounds, and colours and materials named in other languages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogvlm.pipeline.cpu.ages import AgeSpan, implied_age_values, stated_ages
from catalogvlm.pipeline.cpu.attributes import mentioned_values
from catalogvlm.pipeline.cpu.glossary import with_glosses

AGE_LISTS = ("age-group", "recommended-age-group", "infant-age-group", "age-restrictions")


@pytest.mark.parametrize(
    ("text", "ages"),
    [
        ("Wooden puzzle, ages 8+", [AgeSpan(8, math.inf)]),
        ("For ages 3 and up", [AgeSpan(3, math.inf)]),
        ("Bodysuit 0-6 months", [AgeSpan(0, 0.5)]),
        ("Dress 3-4Y", [AgeSpan(3, 4)]),
        ("Juego de mesa, edad: 3 a 5 años", [AgeSpan(3, 5)]),
        ("Jeu dès 6 ans et plus", [AgeSpan(6, math.inf)]),
        ("Spielzeug ab 3 Jahren", [AgeSpan(3, math.inf)]),
        ("Teether, 12 months+", [AgeSpan(1, math.inf)]),
        # numbers that are no ages: a duration, a count, a player count, a rating followed by Spanish "and"
        ("3 years warranty", []),
        ("Pack of 18+", []),
        ("2-4 players", []),
        ("Protección UPF 50+ y paneles", []),
        ("Ages 5-3", []),  # no span runs backwards
    ],
)
def test_stated_ages_by_hand(text, ages):
    assert stated_ages(text) == ages


@pytest.fixture(scope="module")
def age_lists(taxonomy):
    return {a.handle: [v.name for v in a.values] for a in taxonomy.attributes.values() if a.handle in AGE_LISTS}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the tightest listed span holding the age, else the highest threshold passed, else the youngest's group
        ("ages 8+", {"age-group": ["Kids"], "recommended-age-group": ["8 years or older"],
                     "infant-age-group": ["3 years or older"], "age-restrictions": []}),
        ("ages 3-5", {"age-group": ["Kids"], "recommended-age-group": ["3-5 years"],
                      "infant-age-group": ["3 years or older"], "age-restrictions": []}),
        ("3-6 months", {"age-group": ["0-6 months"], "recommended-age-group": ["0-1 year"],
                        "infant-age-group": ["3-6 months"], "age-restrictions": []}),
        ("ages 14+", {"age-group": ["Teens"], "recommended-age-group": ["12 years or older"],
                      "infant-age-group": ["3 years or older"], "age-restrictions": []}),
        ("21+ years", {"age-group": ["Adults"], "recommended-age-group": ["18 years or older"],
                       "infant-age-group": ["3 years or older"], "age-restrictions": ["21 years or older"]}),
    ],
)  # fmt: skip
def test_stated_ages_imply_the_listed_values(age_lists, text, expected):
    assert {h: implied_age_values(values, stated_ages(text)) for h, values in age_lists.items()} == expected


def test_lists_that_are_not_about_age_get_nothing(taxonomy):
    colors = [v.name for a in taxonomy.attributes.values() if a.handle == "color" for v in a.values]
    assert implied_age_values(colors, stated_ages("ages 8+")) == []


@given(st.text(alphabet="0123456789+- agesyrmonthsupdto", max_size=40))
def test_implied_ages_are_always_listed_values(age_lists, text):
    for values in age_lists.values():
        assert set(implied_age_values(values, stated_ages(text))) <= set(values)


MENU = [
    {"handle": "color", "values": ["Black", "Blue", "Green", "Navy", "White", "Clear"]},
    {"handle": "fabric", "values": ["Cotton", "Leather", "Linen"]},
    {"handle": "recommended-age-group", "values": ["3-5 years", "8 years or older", "Kids", "Teens"]},
]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Navy-blue cotton t-shirt", {"color": ["Blue", "Navy"], "fabric": ["Cotton"]}),
        ("Dark-green tee", {"color": ["Green"]}),
        ("Heart-rate monitor strap", {}),  # no colour word in the compound
        ("Black-tie dinner blazer, white", {"color": ["White"]}),  # a colour the text names outranks a compound's
        ("T-shirt en coton noir", {"color": ["Black"], "fabric": ["Cotton"]}),  # French
        ("Weiße Bluse aus Baumwolle, schwarz", {"color": ["Black"], "fabric": ["Cotton"]}),  # German
        ("Borsa in pelle nera", {"color": ["Black"], "fabric": ["Leather"]}),  # Italian
        ("Camisa de linho branca", {"color": ["White"], "fabric": ["Linen"]}),  # Portuguese
        ("Gift line, silver", {}),  # "line" is no French "lin"
        ("Strategy board game for kids, ages 8+", {"recommended-age-group": ["Kids"]}),  # the named value first
        ("Strategy board game, ages 8+", {"recommended-age-group": ["8 years or older"]}),
    ],
)
def test_values_implied_by_compounds_foreign_words_and_ages(title, expected):
    assert mentioned_values(MENU, with_glosses({"title": title}, descriptive=True)) == expected
