"""`catalogvlm batch`: a whole catalog (or a stream of product updates) through a running server on Apache Beam.

Arguments this command does not know are Beam's pipeline options (`--runner`, `--streaming`,
`--number_of_worker_harness_threads`, ...), passed on as they are. Without `--runner`, the DirectRunner runs
the pipeline here with one worker process per core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import EMBEDDINGS_MODEL, PRODUCT_MODEL

from .records import DEFAULT_BATCH_SIZE, DEFAULT_ID_FIELD


def register(subcommands: argparse._SubParsersAction) -> None:
    batch = subcommands.add_parser(
        "batch",
        help="classify a whole catalog (or a stream of updates) through a server on Apache Beam",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _job_arguments(batch, PRODUCT_MODEL)
    batch.add_argument("--format", dest="output_format", choices=("jsonl", "parquet"), default="jsonl")
    batch.set_defaults(handler=_run_job, operation="classify", accepts_beam_options=True)
    embed = subcommands.add_parser(
        "embed",
        help="text and image vectors of a whole catalog (or a stream of updates) through a server, in Parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _job_arguments(embed, EMBEDDINGS_MODEL)
    embed.set_defaults(handler=_run_job, operation="embed", accepts_beam_options=True, output_format="parquet")
    search = subcommands.add_parser("search", help="the products nearest a text query, in an `embed` run's output")
    search.add_argument("--index", required=True, metavar="DIR", help="a `catalogvlm embed --output` folder")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=10)
    search.set_defaults(handler=_search)


def _job_arguments(parser: argparse.ArgumentParser, model: str) -> None:
    parser.add_argument("--url", required=True, help="gRPC address of Triton or Dynamo, HOST:PORT")
    parser.add_argument(
        "--input",
        required=True,
        help="products: a .jsonl/.csv/.parquet file pattern on any Beam filesystem, "
        "or with --streaming kafka://BROKER:PORT/TOPIC or pubsub://projects/P/subscriptions/S",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="a folder for predictions*, carried_over* and dead_letter* files, "
        "or with --streaming kafka://BROKER:PORT/PREFIX or pubsub://projects/P/topics/PREFIX",
    )
    parser.add_argument(
        "--previous", metavar="DIR", help="a previous run's --output: unchanged products are carried over"
    )
    parser.add_argument(
        "--id-field", default=DEFAULT_ID_FIELD, help="the product id's field (default: id, else handle)"
    )
    parser.add_argument("--input-format", choices=("jsonl", "csv", "parquet"), help="default: from the suffix")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="products sent at once per bundle: with "
        "--number_of_worker_harness_threads it bounds the images a worker holds (default %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (deadline)")
    parser.add_argument("--retries", type=int, default=5, help="retries of an UNAVAILABLE answer, with backoff")
    parser.add_argument("--model-name", default=model, help="the served model (default %(default)s)")
    parser.add_argument("--tls-ca", help="PEM CA of a TLS server (turns TLS on)")
    parser.add_argument("--api-key", default=os.environ.get("CATALOGVLM_API_KEY"), help="env: CATALOGVLM_API_KEY")


def _run_job(args: argparse.Namespace) -> int:
    try:  # the `bulk` extra: a base install serves and calls the server without Beam
        from . import bulk
    except ModuleNotFoundError as error:
        raise ConfigurationError(
            f"catalogvlm {args.command} needs Apache Beam ({error}): pip install 'catalogvlm[bulk]'"
        ) from None
    from .inference import BatchOptions, ServerOptions

    options = bulk.pipeline_options(args.beam_options)
    streaming = bulk.is_streaming(options)
    server = ServerOptions(
        args.url, args.timeout, args.retries, api_key=args.api_key, tls_ca=args.tls_ca, model_name=args.model_name
    )
    job = bulk.Job(
        server=server,
        input=args.input,
        output=args.output,
        previous=args.previous,
        id_field=args.id_field,
        input_format=args.input_format,
        output_format=args.output_format,
        batching=BatchOptions(max_batch_size=args.batch_size),
        operation=bulk.OPERATIONS[args.operation],
    )
    started = time.perf_counter()
    counts = bulk.run_updates(job, options) if streaming else bulk.run_catalog(job, options)
    elapsed = time.perf_counter() - started
    summary = bulk.summary(counts)
    if summary["unaccounted"]:
        print(
            f"catalogvlm: the counters miss {summary['unaccounted']} rows (a runner's attempted counts?)",
            file=sys.stderr,
        )
    print(json.dumps({**summary, "seconds": round(elapsed, 1), "rows_per_s": round(summary["rows"] / elapsed, 2)}))
    return 0


def _search(args: argparse.Namespace) -> int:
    from .search import load_index, nearest, query_vector

    index = load_index(args.index)
    for match in nearest(index, query_vector(index, args.query), args.top_k):
        print(f"{match.score:.3f}  {match.id}  {match.title}")
    return 0
