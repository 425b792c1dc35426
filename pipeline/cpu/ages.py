"""Ages a product's text states ("ages 8+", "3-5 years", "0-6 meses") and the listed age values they imply.

The taxonomy's age attributes (Age group, Recommended age group, Infant age group, Age restrictions) list spans
("3-5 years", "8 years or older") and named groups ("Toddlers", "Kids"); merchants write numbers. A stated age is
read as a span of years and matched to the list: the tightest listed span that holds it, else the listed threshold
its youngest user has passed, else the named group of its youngest user. Numbers not tied to an age word or unit
("pack of 18+", "2-4 players") are not ages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from catalogvlm.taxonomy.normalize import fold

# "3-4y" is a kids' size; a "y" after a space is Spanish "and" ("UPF 50+ y ...").
_YEARS = r"years?|yrs?|(?<=\d)y|anos?|ans?|jahre?n?|anni|anno"
_MONTHS = r"months?|mos?|meses|mes|mois|monate?n?|mesi|mese"
_AGE_WORD = r"(?:ages?|aged|edad(?:es)?|idade|alter|eta)"
_OPEN = r"(?:\+|and up|and over|and older|or older|(?:y )?mas|et plus|ou plus|e piu|und mehr)"
_FROM = r"(?:from|ab|des|a partir de|desde|dai|dagli)"
_SPAN = r"(?P<low>\d{1,3})\s*(?:(?:-|to|a|bis|au)\s*(?P<high>\d{1,3})\s*)?"
_UNIT = rf"(?P<unit>{_YEARS}|{_MONTHS})\b"
_PATTERNS = (
    # "ages 8+", "age 3 and up", "edad: 3 a 5 anos", "ages 3-5": the age word makes a bare number an age in years.
    re.compile(rf"\b{_AGE_WORD}\s*:?\s*{_SPAN}(?:{_UNIT}\s*)?(?P<open>{_OPEN})?"),
    # "8+ years", "3 years and up", "3-5 years", "0-6 months": the unit does.
    re.compile(rf"\b{_SPAN}(?P<plus>\+)?\s*{_UNIT}\s*(?P<open>{_OPEN})?"),
    # "from 3 years", "ab 3 Jahren", "des 6 ans": the preposition says "and older".
    re.compile(rf"\b(?P<from>{_FROM})\s+{_SPAN}{_UNIT}"),
)
_MONTH_UNIT = re.compile(rf"^(?:{_MONTHS})$")
MAX_YEARS = 120

# Named groups as half-open spans of years [from, until).
NAMED_GROUPS = {
    "newborn": (0.0, 0.25),
    "babies": (0.0, 1.0),
    "toddlers": (1.0, 3.0),
    "preschoolers": (3.0, 6.0),
    "kids": (3.0, 13.0),
    "school-age children": (6.0, 13.0),
    "teens": (13.0, 18.0),
    "adults": (18.0, math.inf),
}
_LISTED_SPAN = re.compile(rf"^{_SPAN}{_UNIT}(?P<older> or older)?$")


@dataclass(frozen=True)
class AgeSpan:
    """Ages in years, `low` to `high` (inclusive; `math.inf` for "and older")."""

    low: float
    high: float

    @property
    def open_ended(self) -> bool:
        return math.isinf(self.high)


def stated_ages(text: str) -> list[AgeSpan]:
    """The age spans the text states, in order, each once."""
    found: list[AgeSpan] = []
    folded = fold(text)
    for pattern in _PATTERNS:
        for match in pattern.finditer(folded):
            span = _span(match.groupdict(default=""))
            if span and span not in found:
                found.append(span)
    return found


def _span(parts: Mapping[str, str]) -> AgeSpan | None:
    """The span a match's groups state ("" for a group that matched nothing, or that its pattern lacks)."""
    high = parts.get("high", "")
    if bool(high) == any(parts.get(name) for name in ("open", "plus", "from")):
        # "3 years" alone is a duration ("3 years warranty"), not an age; "3-5+" is no span.
        return None
    years = _years_per(parts.get("unit"))
    span = AgeSpan(int(parts["low"]) * years, int(high) * years if high else math.inf)
    return span if span.low <= min(span.high, MAX_YEARS) else None


def _years_per(unit: str | None) -> float:
    """Years per unit of a stated or listed age: years unless the unit is months."""
    return 1 / 12 if unit and _MONTH_UNIT.match(unit) else 1.0


def implied_age_values(values: Sequence[str], ages: Sequence[AgeSpan]) -> list[str]:
    """The listed values (names as listed) the stated ages imply, one per stated age, for a list of age values;
    [] for any other list."""
    spans = _listed_spans(tuple(values)) if ages else {}
    if not spans:
        return []
    implied = [value for age in ages if (value := _best_value(spans, age))]
    return list(dict.fromkeys(implied))


def _best_value(spans: dict[str, tuple[AgeSpan, bool]], age: AgeSpan) -> str | None:
    numeric = {name: span for name, (span, named) in spans.items() if not named}
    holding = [name for name, span in numeric.items() if span.low <= age.low and age.high <= span.high]
    closed = [name for name in holding if not numeric[name].open_ended]
    if closed:
        return min(closed, key=lambda name: numeric[name].high - numeric[name].low)
    if holding:  # thresholds the youngest user has passed: the highest says most
        return max(holding, key=lambda name: numeric[name].low)
    groups = [name for name, (span, named) in spans.items() if named and span.low <= age.low < span.high]
    return min(groups, key=lambda name: spans[name][0].high - spans[name][0].low) if groups else None


@lru_cache(maxsize=1_024)
def _listed_spans(values: tuple[str, ...]) -> dict[str, tuple[AgeSpan, bool]]:
    """{value name: (its span, whether it is a named group)} for the values of an age list ({} for other lists:
    a list is an age list when at least two of its values read as ages)."""
    spans: dict[str, tuple[AgeSpan, bool]] = {}
    for value in values:
        name = fold(value).strip()
        if name in NAMED_GROUPS:
            spans[value] = (AgeSpan(*NAMED_GROUPS[name]), True)
        elif match := _LISTED_SPAN.match(name):
            parts = match.groupdict()
            years = _years_per(parts["unit"])
            end = math.inf if parts["older"] else int(parts["high"] or parts["low"]) * years
            spans[value] = (AgeSpan(int(parts["low"]) * years, end), False)
    return spans if len(spans) >= 2 else {}
