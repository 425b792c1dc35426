"""Stage 2 on the CPU: values the product's own words mention, ages it states (ages.py), colours its image shows,
and the values merchants give an attribute most often where the text names none (fitted by leave-stores-out
validation: calibration.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from catalogvlm.taxonomy.normalize import fold, tokens

from .ages import implied_age_values, stated_ages
from .value_words import FILING_ONLY, aliases

MAX_VALUES_PER_ATTRIBUTE = 3
MAX_PHRASE_WORDS = 4
COLOR_HANDLES = frozenset({"color"})
# "Other" and single letters ("S", "M") are in many lists and would match by accident.
_UNMENTIONABLE = frozenset({"other"})
# Hyphenated compounds ("heart-rate", "v-neck") are one unit: a value may name a whole compound, never a part
# of one ("heart-rate monitor" does not mention the pattern "Hearts").
_UNIT_BREAK = re.compile(r"[^\w-]+")
FILING_FIELDS = ("product_type", "tags")
_FILING_ONLY = frozenset((word,) for word in FILING_ONLY)
_PARENTHESIS = re.compile(r"\(([^)]*)\)")


def mentioned_values(
    menu: Sequence[Mapping[str, object]],
    fields: Mapping[str, str],
    image_colors: Iterable[str] = (),
    defaults: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """{attribute handle: [listed value names]} for values written in the text (whole words, any case), else the
    listed ages its stated ages imply; colour attributes fall back to the colour words inside hyphenated compounds
    ("navy-blue") and then to the image's dominant colours, and any attribute to its value in `defaults`
    (attribute handle: value name) when its list has it."""
    text = " \n ".join(fields.values())
    units = _units(text)
    phrases = _phrases(units)
    filed = _phrases(_units(" \n ".join(fields.get(f, "") for f in FILING_FIELDS)))
    # A compound names no value as a whole ("heart-rate" is no "Hearts"), but its colour words are its colours.
    compound_parts = {(word,) for unit in units if len(unit) > 1 for word in unit}
    ages = stated_ages(text)
    answer: dict[str, list[str]] = {}
    for attribute in menu:
        handle = str(attribute["handle"])
        values = [str(v) for v in attribute.get("values", [])]  # type: ignore[union-attr]
        found = _most_specific(
            [v for v in values if any(n in (filed if n in _FILING_ONLY else phrases) for n in _names(v))]
        )
        found = _both_genders_are_unisex(found, values) or implied_age_values(values, ages)
        if not found and handle in COLOR_HANDLES:
            found = [v for v in values if any(n in compound_parts for n in _names(v))] or _listed(values, image_colors)
        found = found[:MAX_VALUES_PER_ATTRIBUTE]
        if not found and (defaults or {}).get(handle) in values:
            found = [defaults[handle]]  # type: ignore[index]
        if found:
            answer[handle] = found
    return answer


def _listed(values: Sequence[str], names: Iterable[str]) -> list[str]:
    """The `names` that `values` lists, as listed."""
    listed = {v.casefold(): v for v in values}
    return [listed[n.casefold()] for n in names if n.casefold() in listed]


def _most_specific(found: list[str]) -> list[str]:
    """Without the values whose name is part of another found value's ("Silver" beside "Sterling silver"): the text
    named the longer one."""
    words = {v: " ".join(tokens(v)) for v in found}
    return [v for v in found if not any(o != v and f" {words[v]} " in f" {words[o]} " for o in found)]


def _both_genders_are_unisex(found: list[str], values: Sequence[str]) -> list[str]:
    """A product for women and men is, in a list that has it, Unisex."""
    if {"Female", "Male"} <= set(found) and "Unisex" in values:
        return ["Unisex", *(v for v in found if v not in {"Female", "Male", "Unisex"})]
    return found


def _units(text: str) -> list[tuple[str, ...]]:
    return [unit for chunk in _UNIT_BREAK.split(fold(text)) if (unit := tokens(chunk))]


def _phrases(units: Sequence[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Runs of whole units, up to MAX_PHRASE_WORDS words long."""
    phrases = set()
    for start in range(len(units)):
        phrase: tuple[str, ...] = ()
        for unit in units[start:]:
            phrase += unit
            if len(phrase) > MAX_PHRASE_WORDS:
                break
            phrases.add(phrase)
    return phrases


@lru_cache(maxsize=8_192)
def _names(value: str) -> tuple[tuple[str, ...], ...]:
    """The phrases that mention a value: its name, the abbreviation in a name like "Extra large (XL)" (not the
    bare "Extra large", common in marketing), and the aliases of value_words.py."""
    parts = [value, *_PARENTHESIS.findall(value)]
    names = [tuple(tokens(part)) for part in parts] + list(aliases().get(value, ()))
    return tuple(dict.fromkeys(n for n in names if _mentionable(n)))


def _mentionable(words: tuple[str, ...]) -> bool:
    if not words or len(words) > MAX_PHRASE_WORDS or words[0] in _UNMENTIONABLE:
        return False
    return not (len(words) == 1 and (len(words[0]) < 2 or words[0].isdigit()))  # "$50", "30 days" are not sizes
