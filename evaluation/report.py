"""Files an evaluation leaves behind: per-vertical scores, vertical confusion, worst misses, a chart."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from .metrics import AttributeScores, Scores, by_vertical, relation, vertical_confusion


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


def write_attribute_report(path: Path, scores: Mapping[str, AttributeScores]) -> Path:
    """Attribute-value precision, recall and F1 per attribute, most labelled first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["attribute", "pairs", "predicted", "labelled", "correct", "precision", "recall", "f1"])
        for attribute, s in sorted(scores.items(), key=lambda item: -item[1].pairs):
            rates = (f"{v:.4f}" for v in (s.precision, s.recall, s.f1))
            writer.writerow([attribute, s.pairs, s.predicted, s.labelled, s.correct, *rates])
    return path
