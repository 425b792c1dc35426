"""`catalogvlm demo`: start the CPU profile on a real Triton server, classify a few products, stop."""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from catalogvlm.client import CatalogError, Prediction, Product, ProductClassifier
from catalogvlm.serve import served

# Real-looking products; `image` is (colour, shape) drawn at run time, so no binary files are committed.
DEMO_PRODUCTS: tuple[dict[str, object], ...] = (
    {
        "title": "Men's Organic Cotton Crew Neck T-Shirt - Navy",
        "description": "Soft 100% organic cotton tee with a relaxed fit. Free shipping on orders over $50! "
        "Returns accepted within 30 days.",
        "product_type": "T-Shirt",
        "vendor": "Northwind Basics",
        "tags": "men, cotton, basics",
        "image": ((25, 35, 95), "shirt"),
    },
    {
        "title": "Stainless Steel French Press Coffee Maker 34 oz",
        "description": "Double-wall insulated French press that keeps coffee hot. Dishwasher safe.",
        "vendor": "Brewline",
    },
    {
        "title": "Waterproof Hiking Backpack 40L",
        "description": "Lightweight nylon daypack with rain cover and padded laptop sleeve.",
        "product_type": "Backpack",
        "image": ((200, 35, 35), "box"),
    },
    {
        "title": "Organic Lavender Soy Candle - 8 oz Amber Jar",
        "description": "Hand-poured in small batches. 45-hour burn time. Perfect gift for any occasion!",
        "tags": "candles, home fragrance",
    },
    {
        "title": "Kids Wooden Jigsaw Puzzle, 100 Pieces",
        "description": "Colourful world map puzzle for ages 5+.",
        "product_type": "Puzzle",
    },
    {
        "title": "Slim Leather Bifold Wallet with RFID Blocking",
        "description": "Genuine leather, 6 card slots. Ships in 1-2 business days.",
        "image": ((110, 70, 40), "box"),
    },
    {
        "title": "Vitamin C Brightening Face Serum 30 ml",
        "description": "With hyaluronic acid. For all skin types. Fragrance-free.",
        "vendor": "Glow Lab",
    },
    {
        "title": "FitPulse 2 Smartwatch",
        "description": "Fitness smartwatch with heart-rate monitor, GPS and a black silicone strap.",
        "product_type": "Smart Watch",
        "image": ((20, 20, 20), "circle"),
    },
)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("demo", help="start the CPU profile on Triton, classify sample products, stop")
    parser.add_argument("--taxonomy", metavar="DIR")
    parser.set_defaults(handler=_demo)


def demo_products() -> list[Product]:
    products = []
    for record in DEMO_PRODUCTS:
        fields = {k: v for k, v in record.items() if k != "image"}
        image = draw_product_image(*record["image"]) if "image" in record else None  # type: ignore[misc]
        products.append(Product(**fields, image=image))  # type: ignore[arg-type]
    return products


def draw_product_image(color: tuple[int, int, int], shape: str, size: tuple[int, int] = (480, 360)) -> bytes:
    """A product-photo stand-in: a coloured object on a light studio background, as JPEG."""
    image = Image.new("RGB", size, (236, 236, 232))
    draw = ImageDraw.Draw(image)
    w, h = size
    if shape == "shirt":
        draw.polygon(
            [
                (w * 0.3, h * 0.15),
                (w * 0.7, h * 0.15),
                (w * 0.85, h * 0.35),
                (w * 0.72, h * 0.42),
                (w * 0.72, h * 0.9),
                (w * 0.28, h * 0.9),
                (w * 0.28, h * 0.42),
                (w * 0.15, h * 0.35),
            ],
            fill=color,
        )
    elif shape == "circle":
        draw.ellipse([w * 0.3, h * 0.15, w * 0.7, h * 0.85], fill=color)
    else:
        draw.rounded_rectangle([w * 0.2, h * 0.12, w * 0.8, h * 0.88], radius=24, fill=color)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _demo(args: argparse.Namespace) -> int:
    console = Console()
    products = demo_products()
    with tempfile.TemporaryDirectory(prefix="catalogvlm-demo-") as work, ExitStack() as stack:
        with console.status("Rendering the CPU model repository and starting tritonserver..."):
            started = time.perf_counter()
            server = stack.enter_context(served("cpu", taxonomy=args.taxonomy, log_file=Path(work) / "triton.log"))
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
