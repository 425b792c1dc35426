"""`catalogvlm eval`: classify labelled products through a running server; score categories hierarchically and,
where the file carries the merchants' attribute values, the predicted values against them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from catalogvlm.client import CatalogError, Prediction, ProductClassifier
from catalogvlm.client.cli import read_rows
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import TEXT_FIELDS, Product
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from .metrics import AttributeValues, score, score_attributes
from .report import write_attribute_report, write_report

# The category label: merchant_products_dev.csv's column, and merchant_attributes_dev.jsonl's key.
LABEL_COLUMNS = ("label_shopify_gid", "category_gid")
ATTRIBUTES_KEY = "attributes"  # {attribute handle: [value handle, ...]}, the merchant's own values


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("eval", help="score classification on labelled products (hierarchical P/R/F1)")
    parser.add_argument("--url", required=True, help="gRPC address of Triton or Dynamo, HOST:PORT")
    parser.add_argument(
        "data",
        type=Path,
        help="CSV or JSONL: title, description, vendor, product_type, tags and the category id in label_shopify_gid"
        f" or category_gid; JSONL rows may carry the merchant's values in `{ATTRIBUTES_KEY}`",
    )
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write per-vertical CSV, confusion, misses, PNG")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--taxonomy", metavar="DIR", help="for category names in the report")
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
        rows = list(read_rows(args.data))[: args.limit]
    except (OSError, ValueError) as error:
        print(f"catalogvlm: cannot read {args.data}: {error}", file=sys.stderr)
        return 2
    label_column = next((c for c in LABEL_COLUMNS if rows and c in rows[0]), None)
    if label_column is None:
        print(f"catalogvlm: {args.data} has no rows with a {' or '.join(LABEL_COLUMNS)} column", file=sys.stderr)
        return 2
    if args.beam_options and not args.runner:
        raise ConfigurationError(f"unrecognized arguments: {' '.join(args.beam_options)} (Beam options need --runner)")
    started = time.perf_counter()
    results = _through_pipeline(args, rows) if args.runner else _through_client(args, rows)
    elapsed = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, CatalogError)]
    for failure in failures[:5]:
        print(f"catalogvlm: a product failed: {failure}", file=sys.stderr)
    scored = [(r, row) for r, row in zip(results, rows, strict=True) if isinstance(r, Prediction)]
    categorised = [(prediction, row) for prediction, row in scored if row.get(label_column)]  # some have no label
    pairs = [(prediction.category.id, row[label_column]) for prediction, row in categorised]
    with_values = ATTRIBUTES_KEY in rows[0]
    taxonomy = load_taxonomy(taxonomy_dir(args.taxonomy)) if args.report or with_values else None
    values = _attribute_values(scored, taxonomy) if with_values else []
    if args.report:
        names = {c.short_id: c.full_name for c in taxonomy}
        written = write_report(args.report, [row for _, row in categorised], pairs, names)
        if with_values:
            labels = [row.get(label_column) for _, row in scored]
            written += write_attribute_report(args.report, values, labels, names)
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    summary = {
        **score(pairs).as_dict(),
        **({"attributes": score_attributes(values).as_dict()} if with_values else {}),
        "corrected_rate": round(sum(p.category.corrected for p, _ in scored) / max(len(scored), 1), 4),
        "failed": len(failures),
        "products_per_s": round(len(rows) / elapsed, 2),
    }
    print(json.dumps(summary))
    return 1 if failures else 0


def _attribute_values(scored: list[tuple[Prediction, dict]], taxonomy) -> list[tuple[AttributeValues, AttributeValues]]:
    """(predicted, merchant's) value handles per attribute handle, for each answered product."""
    handles = {value.id: value.handle for attribute in taxonomy.attributes.values() for value in attribute.values}
    return [
        ({a.handle: {handles.get(v.id, v.id) for v in a.values} for a in prediction.attributes}, row[ATTRIBUTES_KEY])
        for prediction, row in scored
    ]


def _text_fields(row: dict) -> dict[str, str]:
    """The product's text fields as the catalog holds them (a JSONL row's tags are a list)."""
    return Product.from_record({field: row.get(field) for field in TEXT_FIELDS}).text_fields()


def _through_client(args: argparse.Namespace, rows: list[dict[str, str]]) -> list[Prediction | CatalogError]:
    products = [Product.from_record(_text_fields(row)) for row in rows]
    with ProductClassifier(args.url) as classifier:
        return classifier.classify_many(products, concurrency=args.concurrency)


def _through_pipeline(args: argparse.Namespace, rows: list[dict[str, str]]) -> list[Prediction | CatalogError]:
    """The rows as a catalog with their row numbers as ids, through `catalogvlm batch`'s pipeline."""
    from catalogvlm.pipelines import bulk, catalog_io  # the `bulk` extra
    from catalogvlm.pipelines.inference import ServerOptions

    with catalog_io.work_dir(args.work_dir) as folder:
        catalog = catalog_io.write_records(
            folder,
            "catalog.jsonl",
            [{"id": str(i), **_text_fields(row)} for i, row in enumerate(rows)],
        )
        output = catalog_io.join(folder, "output")
        job = bulk.Job(ServerOptions(args.url), catalog, output)
        bulk.run_catalog(job, bulk.pipeline_options(["--runner", args.runner, *args.beam_options]))
        outputs = catalog_io.read_outputs(output)
    answered = {r["id"]: Prediction.from_result(r["prediction"], r["latency_ms"] / 1e3) for r in outputs["predictions"]}
    failed = {r["id"]: CatalogError(r["status"], r["message"]) for r in outputs["dead_letter"]}
    return [answered.get(str(i)) or failed[str(i)] for i in range(len(rows))]
