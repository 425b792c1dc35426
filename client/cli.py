"""`catalogvlm classify`: products in (flags, JSONL or CSV), one JSON result per product out."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

from catalogvlm.errors import INVALID_ARGUMENT
from catalogvlm.pipeline.contract import Product

from .sync import ProductClassifier
from .types import CatalogError, Prediction


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("classify", help="classify products through a running server")
    parser.add_argument("--url", required=True, help="gRPC address of Triton or Dynamo, HOST:PORT")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--title")
    source.add_argument(
        "--input",
        type=Path,
        help="products as .jsonl or .csv (title, description, vendor, "
        "product_type, tags, image = a file path relative to the file)",
    )
    parser.add_argument("--description", default="")
    parser.add_argument("--product-type", default="")
    parser.add_argument("--vendor", default="")
    parser.add_argument("--tags", default="")
    parser.add_argument("--image", type=Path, help="JPEG, PNG, GIF or WebP file")
    parser.add_argument("--output", type=Path, help="write JSON lines here instead of stdout")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (deadline)")
    parser.add_argument("--tls-ca", help="PEM CA of a TLS server (turns TLS on)")
    parser.add_argument("--api-key", default=os.environ.get("CATALOGVLM_API_KEY"), help="env: CATALOGVLM_API_KEY")
    parser.set_defaults(handler=_classify)


def _classify(args: argparse.Namespace) -> int:
    try:
        titled = list(_read_items(args.input)) if args.input else [(args.title, _product_from_flags(args))]
    except (OSError, ValueError) as error:
        print(f"catalogvlm: cannot read products: {error}", file=sys.stderr)
        return 2
    items = [item for _, item in titled]
    products = [item for item in items if isinstance(item, Product)]
    tls = {"ssl": True, "root_certificates": args.tls_ca} if args.tls_ca else {}
    with ProductClassifier(args.url, timeout_s=args.timeout, api_key=args.api_key, **tls) as classifier:
        answers = iter(classifier.classify_many(products, args.concurrency, progress=len(products) > 1))
    results = [next(answers) if isinstance(item, Product) else item for item in items]
    with args.output.open("w", encoding="utf-8") if args.output else nullcontext(sys.stdout) as out:
        _write_results(out, titled, results, lined_up=bool(args.input))
    return 1 if any(isinstance(r, CatalogError) for r in results) else 0


def _write_results(
    out: TextIO,
    titled: list[tuple[str, Product | CatalogError]],
    results: list[Prediction | CatalogError],
    lined_up: bool,
) -> None:
    """A JSON line per answer; failures to stderr and, when `lined_up` (a file of products), as error lines too,
    so that line N of the output is product N of the input."""
    for number, ((title, item), result) in enumerate(zip(titled, results, strict=True), start=1):
        if isinstance(result, CatalogError):
            where = f"product {number} ({title[:40]!r})" if lined_up else "error"
            print(f"catalogvlm: {where}: {result}", file=sys.stderr)
            if lined_up:
                out.write(json.dumps({"title": title, "error": _error(result)}, ensure_ascii=False) + "\n")
        else:
            out.write(json.dumps(_record(item, result), ensure_ascii=False) + "\n")


def _product_from_flags(args: argparse.Namespace) -> Product:
    return Product(
        title=args.title,
        description=args.description,
        product_type=args.product_type,
        vendor=args.vendor,
        tags=args.tags,
        image=args.image.read_bytes() if args.image else None,
    )


def read_products(path: Path) -> Iterator[Product]:
    """Products from a .jsonl or .csv file; image paths are relative to the file's folder."""
    for _, item in _read_items(path):
        if isinstance(item, CatalogError):
            raise ValueError(f"{path}: {item.message}")
        yield item


def _read_items(path: Path) -> Iterator[tuple[str, Product | CatalogError]]:
    """(title, product) per row, as `read_products`; a row whose image cannot be read is that row's error, not
    the whole file's."""
    for row in read_rows(path):
        title = str(row.get("title") or "")
        try:
            yield title, Product.from_record(row, base_dir=path.parent)
        except OSError as error:
            yield title, CatalogError(INVALID_ARGUMENT, f"image: cannot read {row.get('image')!r}: {error.strerror}")


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a .jsonl or .csv file of products, as dicts."""
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            yield from csv.DictReader(handle)
        elif path.suffix in (".jsonl", ".json"):
            yield from (json.loads(line) for line in handle if line.strip())
        else:
            raise ValueError(f"{path}: expected a .jsonl or .csv file")


def _error(error: CatalogError) -> dict[str, str]:
    return {"status": error.status, "message": error.message}


def _record(product: Product, prediction: Prediction) -> dict[str, object]:
    return {"title": product.title, **prediction.raw, "latency_ms": round(prediction.latency_s * 1e3, 1)}
