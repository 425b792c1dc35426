"""Files an evaluation leaves behind: per-vertical scores, vertical confusion, worst misses, a chart."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .metrics import (
    AttributeScores,
    AttributeValues,
    CandidateRecall,
    CascadeRow,
    ReliabilityBin,
    Scores,
    attributes_by_handle,
    by_vertical,
    false_values,
    lineage,
    relation,
    score_attributes,
    vertical_confusion,
)


def write_report(
    out_dir: Path,
    rows: Sequence[Mapping[str, str]],
    pairs: Sequence[tuple[str, str]],
    names: Mapping[str, str],
    worst: int = 50,
) -> list[Path]:
    """`pairs[i]` = (predicted id, label id) of `rows[i]`; `names` maps short ids to full paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_vertical = by_vertical(pairs)
    written = [
        _write_per_vertical(out_dir / "per_vertical.csv", per_vertical, names),
        _write_confusion(out_dir / "vertical_confusion.csv", pairs, names),
        _write_misses(out_dir / "worst_misses.csv", rows, pairs, names, worst),
        _plot(out_dir / "per_vertical.png", per_vertical, names),
    ]
    return written


def _write_per_vertical(path: Path, scores: Mapping[str, Scores], names: Mapping[str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["vertical", "n", "exact", "top_level", "hP", "hR", "hF1"])
        for vertical, s in sorted(scores.items(), key=lambda item: -item[1].n):
            writer.writerow(
                [names.get(vertical, vertical), s.n, *(f"{v:.4f}" for v in (s.exact, s.top_level, s.hP, s.hR, s.hF1))]
            )
    return path


def _write_confusion(path: Path, pairs: Sequence[tuple[str, str]], names: Mapping[str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label_vertical", "predicted_vertical", "count"])
        for (label, predicted), count in vertical_confusion(pairs).most_common():
            writer.writerow([names.get(label, label), names.get(predicted, predicted), count])
    return path


def _write_misses(
    path: Path,
    rows: Sequence[Mapping[str, str]],
    pairs: Sequence[tuple[str, str]],
    names: Mapping[str, str],
    limit: int,
) -> Path:
    """Wrong-vertical misses first (the costliest), then other misses, in input order."""
    severity = {"wrong_vertical": 0, "same_vertical": 1, "descendant": 2, "ancestor": 3}
    misses = [(severity[r], i) for i, r in enumerate(relation(p, t) for p, t in pairs) if r != "exact"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "product_type", "label", "predicted", "relation"])
        for _, i in sorted(misses)[:limit]:
            predicted, label = pairs[i]
            writer.writerow(
                [rows[i].get("title", ""), rows[i].get("product_type", ""), names.get(_short(label), label),
                 names.get(_short(predicted), predicted), relation(predicted, label)]
            )  # fmt: skip
    return path


def _plot(path: Path, scores: Mapping[str, Scores], names: Mapping[str, str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ordered = sorted(scores.items(), key=lambda item: item[1].n)
    labels = [f"{names.get(v, v)} (n={s.n})" for v, s in ordered]
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(ordered) + 1.5))
    axes.barh(labels, [s.hF1 for _, s in ordered], color="#76b900", label="hF1")
    axes.scatter([s.top_level for _, s in ordered], labels, color="#333333", zorder=3, label="top-level accuracy")
    axes.set_xlim(0, 1)
    axes.set_xlabel("score")
    axes.set_title("Classification quality per vertical (label's vertical)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _short(category_id: str) -> str:
    return category_id.rsplit("/", 1)[-1]


def write_attribute_report(
    out_dir: Path,
    values: Sequence[tuple[AttributeValues, AttributeValues]],
    labels: Sequence[tuple[str, str | None]],
    names: Mapping[str, str],
    worst: int = 50,
) -> list[Path]:
    """`values[i]` = (predicted, merchant's) values of the product whose (predicted category id, label) is
    `labels[i]` (the label None where the row has none): scores per attribute, per vertical and per relation of the
    predicted category to the label (stage 2 answers from the predicted category's menu, so a wrong category
    caps it), and the false values predicted most often."""
    out_dir.mkdir(parents=True, exist_ok=True)
    verticals: dict[str, list[tuple[AttributeValues, AttributeValues]]] = {}
    relations: dict[str, list[tuple[AttributeValues, AttributeValues]]] = {}
    for pair, (predicted, label) in zip(values, labels, strict=True):
        verticals.setdefault(names.get(lineage(label)[0], "?") if label else "(no category label)", []).append(pair)
        relations.setdefault(relation(predicted, label) if label else "(no category label)", []).append(pair)
    written = [
        _write_attribute_scores(out_dir / "attributes.csv", "attribute", attributes_by_handle(values)),
        _write_attribute_scores(out_dir / "attributes_per_vertical.csv", "vertical", _scored(verticals)),
        _write_attribute_scores(
            out_dir / "attributes_per_category_relation.csv", "predicted category", _scored(relations)
        ),
    ]
    path = _write_table(
        out_dir / "false_values.csv",
        ["attribute", "value", "times predicted where the merchant gave other values"],
        ((attribute, value, n) for (attribute, value), n in false_values(values).most_common(worst)),
    )
    return [*written, path]


def _scored(groups: Mapping[str, Sequence[tuple[AttributeValues, AttributeValues]]]) -> dict[str, AttributeScores]:
    """Each group's attribute scores, leaving out groups with no labelled pair."""
    scores = {key: score_attributes(group) for key, group in groups.items()}
    return {key: s for key, s in scores.items() if s.pairs}


def write_calibration_report(out_dir: Path, bins: Sequence[ReliabilityBin]) -> Path:
    """The reliability table: per confidence bin, the products in it and the share whose category was right."""
    return _write_table(
        out_dir / "reliability.csv",
        ["confidence_from", "confidence_to", "products", "mean_confidence", "observed_right"],
        ([f"{b.low:.1f}", f"{b.high:.1f}", b.products, f"{b.mean_confidence:.3f}", f"{b.observed:.3f}"] for b in bins),
    )


def write_candidate_report(out_dir: Path, recall: Sequence[CandidateRecall], tokens: Mapping[int, float]) -> Path:
    """Retrieval's candidate recall@K and what K candidates cost in the stage-1 prompt (Qwen2-VL tokens)."""
    return _write_table(
        out_dir / "candidate_recall.csv",
        ["k", "products", "recall", "exact_recall", "prompt_tokens_mean"],
        (
            [r.k, r.products, f"{r.recall:.4f}", f"{r.exact_recall:.4f}", f"{tokens[r.k]:.0f}" if r.k in tokens else ""]
            for r in recall
        ),
    )


def write_cascade_report(out_dir: Path, rows: Sequence[CascadeRow]) -> Path:
    """Per cascade threshold τ: the stage-1 VLM calls retrieval would answer, and their precision."""
    return _write_table(
        out_dir / "cascade.csv",
        ["threshold", "products", "answered_by_retrieval", "share_avoided", "precision"],
        ([r.threshold, r.products, r.answered_by_retrieval, f"{r.share:.4f}", f"{r.precision:.4f}"] for r in rows),
    )


def _write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_attribute_scores(path: Path, key: str, scores: Mapping[str, AttributeScores]) -> Path:
    """Attribute-value precision, recall and F1 per `key`, most labelled first."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([key, "pairs", "predicted", "labelled", "correct", "precision", "recall", "f1"])
        for name, s in sorted(scores.items(), key=lambda item: -item[1].pairs):
            rates = (f"{v:.4f}" for v in (s.precision, s.recall, s.f1))
            writer.writerow([name, s.pairs, s.predicted, s.labelled, s.correct, *rates])
    return path
