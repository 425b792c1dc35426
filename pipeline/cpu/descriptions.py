"""The simplified description: what the product is, without store boilerplate or marketing filler."""

from __future__ import annotations

import re

MAX_CHARS = 300
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_BOILERPLATE = re.compile(
    r"\b(shipping|ships|delivery|deliver|dispatch|return|returns|refund|exchange|warranty|guarantee|policy|"
    r"order now|buy now|add to cart|click|contact us|customer service|size chart|limited time|sale|discount|"
    r"coupon|free gift|satisfaction|subscribe|follow us|instagram|best[- ]seller|don't miss|hurry)\b",
    re.IGNORECASE,
)
_FILLER = re.compile(r"\b(amazing|awesome|perfect gift|must[- ]have|best ever|incredible|stunning|you'll love)\b", re.I)


def simplify(title: str, description: str) -> str:
    kept = [
        s.strip()
        for s in _SENTENCE.split(description)
        if s.strip() and not _BOILERPLATE.search(s) and not _FILLER.search(s)
    ]
    text = " ".join(kept) or title
    if len(text) <= MAX_CHARS:
        return text
    cut = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
