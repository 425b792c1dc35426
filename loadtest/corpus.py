"""What the load test sends: real merchant products (some with generated photos) and category paths."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from pathlib import Path

from catalogvlm.client import Product
from catalogvlm.client.cli import read_products
from catalogvlm.samples import DEMO_PRODUCTS, draw_product_image
from catalogvlm.settings import PROJECT_ROOT

DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "eval" / "merchant_products_dev.csv"
PHOTO_COLORS = ((25, 35, 95), (200, 30, 30), (20, 20, 20), (120, 75, 40), (40, 150, 60), (240, 220, 40))


@dataclass(frozen=True)
class Corpus:
    products: tuple[Product, ...]
    photos: tuple[bytes, ...]
    paths: tuple[str, ...]
    image_ratio: float

    def product(self) -> Product:
        product = random.choice(self.products)
        if self.photos and random.random() < self.image_ratio:
            return replace(product, image=random.choice(self.photos))
        return product

    def category_paths(self, count: int) -> list[str]:
        """Paths as merchants type them: lower case, 'and' for '&', sometimes a level short."""
        chosen = random.choices(self.paths, k=count)
        return [_as_typed(path) for path in chosen]


def load_corpus(path: str | None, image_ratio: float) -> Corpus:
    """Products from `path` (.csv/.jsonl), else the dev set when present, else the demo products.

    At most a handful of distinct photos are generated, so the load generator's memory stays flat.
    """
    source = Path(path) if path else DEFAULT_CORPUS
    if source.is_file():
        products = tuple(p for p in read_products(source) if p.title.strip())
        paths = _label_paths(source)
    else:
        products = tuple(Product(**{k: v for k, v in r.items() if k != "image"}) for r in DEMO_PRODUCTS)  # type: ignore[arg-type]
        paths = ()
    photos = tuple(draw_product_image(color, shape) for color in PHOTO_COLORS for shape in ("box", "shirt"))
    return Corpus(
        products, photos, paths or ("Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",), image_ratio
    )


def _label_paths(source: Path) -> tuple[str, ...]:
    if source.suffix != ".csv":
        return ()
    with source.open(encoding="utf-8", newline="") as handle:
        return tuple(
            {row["label_shopify_full_name"] for row in csv.DictReader(handle) if row.get("label_shopify_full_name")}
        )


def _as_typed(path: str) -> str:
    levels = path.split(" > ")
    if len(levels) > 2 and random.random() < 0.3:
        del levels[random.randrange(1, len(levels) - 1)]
    typed = " > ".join(levels)
    return typed.lower().replace("&", "and") if random.random() < 0.5 else typed
