"""`catalogvlm demo`: start the CPU profile on a real Triton server, classify a few products, stop."""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.table import Table

from catalogvlm.builders.repository import NO_RESULT_CACHE
from catalogvlm.client import CatalogError, Prediction, Product, ProductClassifier
from catalogvlm.samples import demo_products
from catalogvlm.servers import served


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("demo", help="start the CPU profile on Triton, classify sample products, stop")
    parser.add_argument("--taxonomy", metavar="DIR")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    console = Console()
    products = demo_products()
    with tempfile.TemporaryDirectory(prefix="catalogvlm-demo-") as work, ExitStack() as stack:
        with console.status("Rendering the CPU model repository and starting tritonserver..."):
            started = time.perf_counter()
            # The throughput pass repeats the products: without the result cache each costs a model call.
            log = Path(work) / "triton.log"
            server = stack.enter_context(served("cpu", taxonomy=args.taxonomy, values=NO_RESULT_CACHE, log_file=log))
        console.print(f"tritonserver ready on gRPC {server.grpc_url} in {time.perf_counter() - started:.1f} s")
        with ProductClassifier(server.grpc_url) as classifier:
            results = classifier.classify_many(products, concurrency=1, progress=False)  # one at a time: latency
            batch_started = time.perf_counter()
            classifier.classify_many(products * 4, concurrency=4, progress=False)
            rate = len(products) * 4 / (time.perf_counter() - batch_started)
    console.print(_table(products, results))
    console.print(f"Throughput with 4 concurrent requests: {rate:.1f} products/s. Server stopped.")
    return 0 if all(isinstance(r, Prediction) for r in results) else 1


def _table(products: list[Product], results: list[Prediction | CatalogError]) -> Table:
    table = Table(title="catalogvlm demo: CPU profile on a real Triton server", show_lines=True)
    for column in ("product", "category", "corrected?", "attributes", "ms"):
        table.add_column(column, overflow="fold")
    for product, result in zip(products, results, strict=True):
        title = product.title + (" [image]" if product.image else "")
        if isinstance(result, CatalogError):
            table.add_row(title, f"[red]{result}[/red]", "", "", "")
            continue
        attributes = "; ".join(f"{a.name}: {', '.join(v.name for v in a.values)}" for a in result.attributes[:4])
        table.add_row(
            title,
            result.category.full_name,
            "yes" if result.category.corrected else "no",
            attributes or "-",
            f"{result.latency_s * 1e3:.0f}",
        )
    return table
