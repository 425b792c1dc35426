"""Hierarchical classification metrics over taxonomy ids (micro-averaged, Kiritchenko et al.)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def lineage(category_id: str) -> tuple[str, ...]:
    """A Shopify id with its ancestors, vertical first: 'aa-1-13-8' -> ('aa', 'aa-1', 'aa-1-13', 'aa-1-13-8').

    Shopify ids encode the tree, so no taxonomy is needed; a gid prefix is dropped.
    """
    short = category_id.rsplit("/", 1)[-1]
    parts = short.split("-")
    return tuple("-".join(parts[: i + 1]) for i in range(len(parts)))


@dataclass(frozen=True)
class Scores:
    n: int
    exact: float
    top_level: float
    hP: float
    hR: float
    hF1: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def score(pairs: Iterable[tuple[str, str]]) -> Scores:
    """`pairs` of (predicted id, labelled id)."""
    n = exact = top = shared = predicted_total = label_total = 0
    for predicted, label in pairs:
        p, t = lineage(predicted), lineage(label)
        n += 1
        exact += p[-1] == t[-1]
        top += p[0] == t[0]
        shared += len(set(p) & set(t))
        predicted_total += len(p)
        label_total += len(t)
    if n == 0:
        return Scores(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    h_p, h_r = shared / predicted_total, shared / label_total
    h_f1 = 2 * h_p * h_r / (h_p + h_r) if h_p + h_r else 0.0
    return Scores(n, exact / n, top / n, h_p, h_r, h_f1)


def relation(predicted: str, label: str) -> str:
    """'exact', 'ancestor' (prediction is coarser), 'descendant' (finer), 'same_vertical' or 'wrong_vertical'."""
    p, t = lineage(predicted), lineage(label)
    if p == t:
        return "exact"
    if t[: len(p)] == p:
        return "ancestor"
    if p[: len(t)] == t:
        return "descendant"
    return "same_vertical" if p[0] == t[0] else "wrong_vertical"


def by_vertical(pairs: Sequence[tuple[str, str]]) -> dict[str, Scores]:
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for predicted, label in pairs:
        groups[lineage(label)[0]].append((predicted, label))
    return {vertical: score(group) for vertical, group in sorted(groups.items())}


def vertical_confusion(pairs: Iterable[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """(label vertical, predicted vertical) counts."""
    return Counter((lineage(label)[0], lineage(predicted)[0]) for predicted, label in pairs)
