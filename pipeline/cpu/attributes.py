"""Stage 2 on the CPU: values the product's own words mention, and colours its image shows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from catalogvlm.taxonomy.normalize import fold, tokens

MAX_VALUES_PER_ATTRIBUTE = 3
MAX_PHRASE_WORDS = 4
COLOR_HANDLES = frozenset({"color"})
# "Other" and single letters ("S", "M") are in many lists and would match by accident.
_UNMENTIONABLE = frozenset({"other"})
# Hyphenated compounds ("heart-rate", "v-neck") are one unit: a value may name a whole compound, never a part
# of one ("heart-rate monitor" does not mention the pattern "Hearts").
_UNIT_BREAK = re.compile(r"[^\w-]+")


def mentioned_values(
    menu: Sequence[Mapping[str, object]], fields: Mapping[str, str], image_colors: Iterable[str] = ()
) -> dict[str, list[str]]:
    """{attribute handle: [listed value names]} for values written in the text (whole words, any case);
    colour attributes fall back to the image's dominant colours when the text names none."""
    phrases = _phrases(_units(" \n ".join(fields.values())))
    seen_colors = [c for c in image_colors]
    answer: dict[str, list[str]] = {}
    for attribute in menu:
        handle = str(attribute["handle"])
        values = [str(v) for v in attribute.get("values", [])]  # type: ignore[union-attr]
        found = [v for v in values if _is_mentioned(v, phrases)][:MAX_VALUES_PER_ATTRIBUTE]
        if not found and handle in COLOR_HANDLES:
            listed = {v.casefold(): v for v in values}
            found = [listed[c.casefold()] for c in seen_colors if c.casefold() in listed][:MAX_VALUES_PER_ATTRIBUTE]
        if found:
            answer[handle] = found
    return answer


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


def _is_mentioned(value: str, phrases: set[tuple[str, ...]]) -> bool:
    words = tuple(tokens(value))
    if not words or len(words) > MAX_PHRASE_WORDS or words[0] in _UNMENTIONABLE:
        return False
    if len(words) == 1 and (len(words[0]) < 2 or words[0].isdigit()):  # "$50", "30 days" are not sizes
        return False
    return words in phrases
