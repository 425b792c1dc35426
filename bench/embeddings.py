"""Product embeddings, measured: embeddings/s through the server at a concurrency and through `catalogvlm embed`
in the same run (their ratio), and retrieval quality on labelled products: for each product, the share of its 10
nearest neighbours (cosine, itself left out) whose merchant category is its own (precision@10); and search: for
each category with at least 5 products, its name as the query (as `catalogvlm search` embeds it), the share of
the 10 products found that carry it.

    python -m catalogvlm.bench.embeddings --url HOST:PORT --input ../shared/eval/merchant_products_dev.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from catalogvlm.client import Product, ProductClassifier
from catalogvlm.pipelines.search import Index, load_index, nearest, query_vector

LABEL = "label_shopify_full_name"


def precision_at_k(vectors: np.ndarray, labels: list[str], k: int = 10) -> float:
    """Mean over products of the share of its k nearest others that carry its label."""
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    nearest = np.argsort(-scores, axis=1)[:, :k]
    label_array = np.asarray(labels)
    return float((label_array[nearest] == label_array[:, None]).mean())


def query_precision_at_k(index: Index, labels: list[str], k: int = 10, min_products: int = 5) -> float:
    counts = Counter(labels)
    categories = sorted(c for c, n in counts.items() if n >= min_products)
    label_array = np.asarray(labels)
    found = [nearest(index, query_vector(index, c.split(" > ")[-1]), k) for c in categories]
    position = {product_id: i for i, product_id in enumerate(index.ids)}
    return float(
        np.mean(
            [
                (label_array[[position[m.id] for m in matches]] == c).mean()
                for matches, c in zip(found, categories, strict=True)
            ]
        )
    )


def server_rate(url: str, products: list[Product], concurrency: int) -> float:
    with ProductClassifier(url, retries=5) as client, ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(client.embed, products))
        return len(products) / (time.perf_counter() - started)


def pipeline_rate(url: str, catalog: Path, output: Path, id_field: str, extra: list[str]) -> float:
    command = [sys.executable, "-m", "catalogvlm.cli", "embed", "--url", url, "--input", str(catalog)]
    command += ["--output", str(output), "--id-field", id_field, *extra]
    summary = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    return summary["predicted"] / summary["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--input", type=Path, required=True, help="a labelled CSV (handle, title, ..., label)")
    parser.add_argument("--concurrency", type=int, default=16)
    args, beam_args = parser.parse_known_args(argv)
    with args.input.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    products = [Product(title=r["title"], description=r["description"], product_type=r["product_type"],
                        vendor=r["vendor"], tags=r["tags"]) for r in rows]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        served = server_rate(args.url, products, args.concurrency)
        piped = pipeline_rate(args.url, args.input, Path(folder), "handle", beam_args)
        index = load_index(folder)
    labels = {r["handle"]: r[LABEL] for r in rows}
    ordered = [labels[i] for i in index.ids]
    quality = precision_at_k(index.vectors, ordered)
    report = {
        "products": len(products),
        f"server_embeddings_per_s_at_{args.concurrency}": round(served, 1),
        "pipeline_embeddings_per_s": round(piped, 1),
        "pipeline_to_server": round(piped / served, 2),
        "text_precision_at_10": round(quality, 3),
        "category_query_precision_at_10": round(query_precision_at_k(index, ordered), 3),
        "text_model": index.text_model,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
