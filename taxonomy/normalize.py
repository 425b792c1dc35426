"""Text normalisation shared by category correction and attribute value matching.

Both sides of every comparison go through the same functions, so a crude rule (such as the
singulariser) only has to be consistent, not linguistically right.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_QUERY_CHARS = 1_000

_STOPWORDS = frozenset(
    {"and", "the", "for", "of", "a", "an", "with", "other", "misc", "miscellaneous", "in", "to", "on", "by", "or"}
    # Function words of the other languages merchants write in: "de" must not match "De-Icers".
    | {"de", "del", "la", "el", "los", "las", "y", "con", "para", "por", "en", "un", "una", "al"}
    | {"le", "les", "du", "des", "et", "pour", "avec", "au", "aux", "une"}
    | {"da", "do", "dos", "das", "e", "com", "em", "um", "uma", "di", "il", "per", "und", "mit", "der", "die"}
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
# Separators a model uses between path levels besides Shopify's " > ".
_PATH_SEPARATORS = re.compile(r"\s*(?:>|›|»|→|->|=>|::|\|)\s*|\s+/\s+")


@lru_cache(maxsize=65_536)
def singular(token: str) -> str:
    if len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies"):
        return token[:-3] + "y"
    if token.endswith(("ches", "shes", "xes", "sses", "zes")):
        return token[:-2]
    if token.endswith("s"):
        return token[:-1]
    return token


def fold(text: str) -> str:
    """Lower case, accents removed, `&` spelled out."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower().replace("&", " and ")


def tokens(text: str) -> tuple[str, ...]:
    """Singular content words of a segment: 'Men's T-Shirts & Tops' -> ('men', 't', 'shirt', 'top')."""
    words = _NON_WORD.split(fold(text).replace("'s ", " "))
    return tuple(singular(w) for w in words if w and w not in _STOPWORDS)


def segment_key(text: str) -> str:
    return " ".join(tokens(text))


def compact(key: str) -> str:
    """'smart watch' -> 'smartwatch': makes 'Smartwatch' and 'Smart Watches' equal."""
    return key.replace(" ", "")


def split_path(text: str) -> list[str]:
    """Path levels of a model-written category path, whatever separator it used."""
    parts = [p for p in _PATH_SEPARATORS.split(text.strip()) if p.strip()]
    if len(parts) == 1 and text.count("/") >= 2:  # "a/b/c"; a single slash is part of names like "AM/FM Radios"
        parts = [p for p in text.split("/") if p.strip()]
    return [p.strip() for p in parts]
