"""Sample products for the demo, the load test's fallback corpus and the serving tests: real-looking
products whose photos are drawn at run time, so no binary files are committed."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from catalogvlm.pipeline.contract import Product

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
