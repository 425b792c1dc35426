"""Stage 2 on the CPU: values the product's own words mention, and colours its image shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from catalogvlm.taxonomy.normalize import tokens

MAX_VALUES_PER_ATTRIBUTE = 3
MAX_PHRASE_WORDS = 4
COLOR_HANDLES = frozenset({"color"})
# "Other" and single letters ("S", "M") are in many lists and would match by accident.
_UNMENTIONABLE = frozenset({"other"})


def mentioned_values(
    menu: Sequence[Mapping[str, object]], fields: Mapping[str, str], image_colors: Iterable[str] = ()
) -> dict[str, list[str]]:
    """{attribute handle: [listed value names]} for values written in the text (whole words, any case);
    colour attributes fall back to the image's dominant colours when the text names none."""
    phrases = _phrases(tokens(" \n ".join(fields.values())))
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


def _phrases(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {
        tuple(words[start : start + length])
        for length in range(1, MAX_PHRASE_WORDS + 1)
        for start in range(len(words) - length + 1)
    }


def _is_mentioned(value: str, phrases: set[tuple[str, ...]]) -> bool:
    words = tuple(tokens(value))
    if not words or len(words) > MAX_PHRASE_WORDS or words[0] in _UNMENTIONABLE:
        return False
    if len(words) == 1 and (len(words[0]) < 2 or words[0].isdigit()):  # "$50", "30 days" are not sizes
        return False
    return words in phrases
