"""Hierarchical classification metrics over taxonomy ids (micro-averaged, Kiritchenko et al.), and attribute-value
precision and recall over the attributes merchants labelled."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


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


def is_right(predicted: str, label: str) -> bool:
    """The category the confidence speaks for: the label itself, or one of its ancestors (a coarser answer)."""
    return lineage(label)[: len(lineage(predicted))] == lineage(predicted)


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


# Attribute values, as the eval folder's README scores them: only the attributes the merchant labelled count, and
# precision and recall are summed over those (product, attribute) pairs.
AttributeValues = Mapping[str, Collection[str]]  # attribute handle -> value handles


@dataclass(frozen=True)
class AttributeScores:
    pairs: int  # labelled (product, attribute) pairs
    predicted: int  # values predicted on those pairs
    labelled: int  # values the merchants gave
    correct: int  # predicted values the merchant also gave

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.labelled if self.labelled else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        rates = {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        return {"pairs": self.pairs, **{k: round(v, 4) for k, v in rates.items()}}


def attribute_pairs(
    products: Iterable[tuple[AttributeValues, AttributeValues]],
) -> Iterator[tuple[str, set[str], set[str]]]:
    """(attribute, predicted values, labelled values) for every attribute a merchant labelled."""
    for predicted, labelled in products:
        for attribute, gold in labelled.items():
            if gold:
                yield attribute, set(predicted.get(attribute, ())), set(gold)


def score_attributes(products: Iterable[tuple[AttributeValues, AttributeValues]]) -> AttributeScores:
    """`products` of (predicted, labelled) values per attribute."""
    return _sum_pairs((predicted, gold) for _, predicted, gold in attribute_pairs(products))


def attributes_by_handle(products: Iterable[tuple[AttributeValues, AttributeValues]]) -> dict[str, AttributeScores]:
    groups: dict[str, list[tuple[set[str], set[str]]]] = defaultdict(list)
    for attribute, predicted, gold in attribute_pairs(products):
        groups[attribute].append((predicted, gold))
    return {attribute: _sum_pairs(group) for attribute, group in sorted(groups.items())}


def _sum_pairs(pairs: Iterable[tuple[set[str], set[str]]]) -> AttributeScores:
    n = predicted_total = labelled_total = correct = 0
    for predicted, gold in pairs:
        n += 1
        predicted_total += len(predicted)
        labelled_total += len(gold)
        correct += len(predicted & gold)
    return AttributeScores(n, predicted_total, labelled_total, correct)


def on_category(
    products: Iterable[tuple[AttributeValues, AttributeValues]], listed: Iterable[Collection[str]]
) -> list[tuple[AttributeValues, AttributeValues]]:
    """Each product's labelled values kept only on the attributes in `listed` (those its labelled category lists):
    a stage 2 that fills its category's attributes can find no others, and merchants' exports also carry values
    on attributes their category no longer lists."""
    return [
        (predicted, {attribute: gold for attribute, gold in labelled.items() if attribute in handles})
        for (predicted, labelled), handles in zip(products, listed, strict=True)
    ]


def false_values(products: Iterable[tuple[AttributeValues, AttributeValues]]) -> Counter[tuple[str, str]]:
    """(attribute, value) predicted where the merchant labelled that attribute with other values, counted."""
    return Counter(
        (attribute, value)
        for attribute, predicted, gold in attribute_pairs(products)
        for value in sorted(predicted - gold)
    )


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    products: int
    mean_confidence: float
    observed: float  # share right (exact or an ancestor of the label)


def reliability(confidences: Iterable[float], right: Iterable[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Confidence bins against the observed share of right answers (empty bins left out)."""
    confidence, correct = np.asarray(list(confidences), dtype=float), np.asarray(list(right), dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [
        ReliabilityBin(
            edges[b], edges[b + 1], int(mask.sum()), float(confidence[mask].mean()), float(correct[mask].mean())
        )
        for b in range(bins)
        if (mask := index == b).any()
    ]


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """The products' mean gap between confidence and observed share right, bin by bin."""
    total = sum(b.products for b in bins)
    return sum(b.products * abs(b.observed - b.mean_confidence) for b in bins) / total if total else 0.0


def largest_gap(bins: Sequence[ReliabilityBin], min_share: float = 0.02) -> float:
    """The calibration target's own measure: the largest gap between confidence and observed share right in a
    bin, over the bins that hold at least `min_share` of the products (a bin of a few products is noise)."""
    total = sum(b.products for b in bins)
    gaps = [abs(b.observed - b.mean_confidence) for b in bins if total and b.products >= min_share * total]
    return max(gaps, default=0.0)


RECALL_AT = (5, 10, 20, 50)
CASCADE_THRESHOLDS = (0.8, 0.9, 0.95)


@dataclass(frozen=True)
class CandidateRecall:
    k: int
    products: int
    recall: float  # share with the label or one of its ancestors among the first k candidates
    exact_recall: float  # share with the label itself among them


def candidate_recall(
    candidates: Sequence[Sequence[str]], labels: Sequence[str], ks: Iterable[int] = RECALL_AT
) -> list[CandidateRecall]:
    """Recall@K of ranked candidate ids against label ids (products without a label left out)."""
    labelled = [(found, label) for found, label in zip(candidates, labels, strict=True) if label]
    n = max(len(labelled), 1)
    return [
        CandidateRecall(
            k,
            len(labelled),
            sum(any(is_right(c, label) for c in found[:k]) for found, label in labelled) / n,
            sum(any(lineage(c)[-1] == lineage(label)[-1] for c in found[:k]) for found, label in labelled) / n,
        )
        for k in ks
    ]


@dataclass(frozen=True)
class CascadeRow:
    threshold: float
    products: int
    answered_by_retrieval: int  # stage-1 VLM calls the cascade avoids
    precision: float  # share of those whose category is right (exact or an ancestor of the label)

    @property
    def share(self) -> float:
        return self.answered_by_retrieval / self.products if self.products else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "answered_by_retrieval": self.answered_by_retrieval,
            "share": round(self.share, 4),
            "precision": round(self.precision, 4),
        }


def cascade_table(
    confidences: Sequence[float], right: Sequence[bool], thresholds: Iterable[float] = CASCADE_THRESHOLDS
) -> list[CascadeRow]:
    """For each τ: how many products retrieval would answer (its confidence ≥ τ) and how many of them right."""
    confidence, correct = np.asarray(confidences, dtype=float), np.asarray(right, dtype=bool)
    rows = []
    for threshold in thresholds:
        above = confidence >= threshold
        precision = float(correct[above].mean()) if above.any() else 0.0
        rows.append(CascadeRow(threshold, len(confidence), int(above.sum()), precision))
    return rows
