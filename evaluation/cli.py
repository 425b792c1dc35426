"""`catalogvlm eval`: classify a labelled CSV through a running server and score it hierarchically."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from catalogvlm.client import CatalogError, Prediction, ProductClassifier
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import TEXT_FIELDS, Product
from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import load_taxonomy

from .metrics import score
from .report import write_report

LABEL_COLUMN = "label_shopify_gid"


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("eval", help="score classification on labelled products (hierarchical P/R/F1)")
    parser.add_argument("--url", required=True, help="gRPC address of Triton or Dynamo, HOST:PORT")
    parser.add_argument("data", type=Path, help=f"CSV: title, description, vendor, product_type, tags, {LABEL_COLUMN}")
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
    with args.data.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[: args.limit]
    if not rows or LABEL_COLUMN not in rows[0]:
        print(f"catalogvlm: {args.data} has no rows with a {LABEL_COLUMN} column", file=sys.stderr)
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
    pairs = [(prediction.category.id, row[LABEL_COLUMN]) for prediction, row in scored]
    if args.report:
        taxonomy = load_taxonomy(taxonomy_dir(args.taxonomy))
        names = {c.short_id: c.full_name for c in taxonomy}
        for path in write_report(args.report, [row for _, row in scored], pairs, names):
            print(f"wrote {path}", file=sys.stderr)
    summary = {
        **score(pairs).as_dict(),
        "corrected_rate": round(sum(p.category.corrected for p, _ in scored) / max(len(scored), 1), 4),
        "failed": len(failures),
        "products_per_s": round(len(rows) / elapsed, 2),
    }
    print(json.dumps(summary))
    return 1 if failures else 0


def _through_client(args: argparse.Namespace, rows: list[dict[str, str]]) -> list[Prediction | CatalogError]:
    products = [Product.from_record({k: v for k, v in row.items() if k != "image"}) for row in rows]
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
            [{"id": str(i), **{f: row.get(f, "") for f in TEXT_FIELDS}} for i, row in enumerate(rows)],
        )
        output = catalog_io.join(folder, "output")
        job = bulk.Job(ServerOptions(args.url), catalog, output)
        bulk.run_catalog(job, bulk.pipeline_options(["--runner", args.runner, *args.beam_options]))
        outputs = catalog_io.read_outputs(output)
    answered = {r["id"]: Prediction.from_result(r["prediction"], r["latency_ms"] / 1e3) for r in outputs["predictions"]}
    failed = {r["id"]: CatalogError(r["status"], r["message"]) for r in outputs["dead_letter"]}
    return [answered.get(str(i)) or failed[str(i)] for i in range(len(rows))]
