"""The two stage prompts, in Qwen2-VL's chat format.

Order matters for the GPU profile: the long instructions shared by every request come first, so
TensorRT-LLM's KV-cache reuse serves that prefix from cache; what differs per request (the attribute
menu, the product, the image) comes last. The variable parts sit in tagged JSON blocks, which a VLM
reads well and which the CPU engine parses back (`read_block`): every engine reads the same prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from catalogvlm.taxonomy import MenuAttribute

from .candidates import Candidate
from .errors import ModelOutputError
from .images import image_key
from .product import Product

IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

SYSTEM = (
    "You are a meticulous e-commerce catalog specialist. You classify products into the Shopify Product "
    "Taxonomy and describe them factually. You answer with one JSON object and nothing else."
)

CATEGORY_TASK = """Classify the product below into the Shopify Product Taxonomy.
Rules:
- "category": the most specific category that fits, as the full path from the vertical down, levels separated
  by " > " and named exactly as in the taxonomy (e.g. "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts").
  The 26 verticals: Animals & Pet Supplies, Apparel & Accessories, Arts & Entertainment, Baby & Toddler, Bundles,
  Business & Industrial, Cameras & Optics, Electronics, Food, Beverages & Tobacco, Furniture, Gift Cards, Hardware,
  Health & Beauty, Home & Garden, Luggage & Bags, Mature, Media, Office Supplies, Product Add-Ons,
  Religious & Ceremonial, Services, Software, Sporting Goods, Toys & Games, Uncategorized.
- "simplified_description": one or two plain sentences saying what the product is, without shipping, returns,
  warranty or store policies and without marketing superlatives.
- "image_description": what the image shows, or "" when there is no image. Do not invent details.
- A category_candidates block, when given, lists taxonomy paths a retrieval index found for this product, each
  with its estimated chance of being right. Choose one of them when it fits; otherwise write your own path.
Answer exactly: {"category": "...", "simplified_description": "...", "image_description": "..."}"""

ATTRIBUTE_TASK = """Fill in the attributes of the product below for its taxonomy category.
Rules:
- Use only the attributes listed in <attribute_menu>, keyed by their handle.
- Use only values from each attribute's list, written exactly as listed. Several values are allowed.
- Leave out an attribute when the title, description, tags or image do not show its value. Do not guess.
Answer exactly: {"attributes": {"<handle>": ["<value>", ...], ...}}"""

_BLOCK = "<{tag}>\n{body}\n</{tag}>"
CANDIDATES_TAG = "category_candidates"


def chat(system: str, user: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def category_prompt(product: Product, candidates: Sequence[Candidate] = ()) -> str:
    """Stage 1's prompt; the candidates block (when there are candidates) follows the shared instructions, so
    the prefix every request shares (and the KV cache reuses) is the same with or without it."""
    grounding = [candidates_block(candidates)] if candidates else []
    return chat(SYSTEM, "\n\n".join([CATEGORY_TASK, *grounding, *_product_blocks(product)]))


def candidates_block(candidates: Sequence[Candidate]) -> str:
    listed = [{"category": c.category, "confidence": round(c.confidence, 2)} for c in candidates]
    return block(CANDIDATES_TAG, json.dumps(listed, ensure_ascii=False))


def menu_entries(menu: Sequence[MenuAttribute]) -> list[dict[str, object]]:
    """A category's attribute menu as stage 2's prompt lists it (and an engine reads it back)."""
    return [{"handle": a.handle, "name": a.name, "values": [v.name for v in a.values]} for a in menu]


def attribute_prompt(product: Product, category_path: str, menu: Sequence[MenuAttribute]) -> str:
    blocks = [
        ATTRIBUTE_TASK,
        block("category", category_path),
        block("attribute_menu", json.dumps(menu_entries(menu), ensure_ascii=False)),
        *_product_blocks(product),
    ]
    return chat(SYSTEM, "\n\n".join(blocks))


# Chat-template control tokens (`<|im_end|>`, `<|image_pad|>`) typed into product text would end the user's
# turn or claim an image slot once tokenized: they carry no product meaning, so they are removed.
_CONTROL_TOKEN = re.compile(r"<\|[^|<>\s]{1,40}\|>")


def _product_blocks(product: Product) -> list[str]:
    fields = {name: _CONTROL_TOKEN.sub("", value) for name, value in product.text_fields().items()}
    blocks = [block("product", json.dumps(fields, ensure_ascii=False))]
    if product.image is not None:
        blocks.append(block("image", f"key {image_key(product.image)}\n{IMAGE_PLACEHOLDER}"))
    return blocks


def block(tag: str, body: str) -> str:
    return _BLOCK.format(tag=tag, body=body)


def read_block(prompt: str, tag: str) -> str | None:
    """The body of `<tag>...</tag>`, the last one in the prompt (the request's own, after any examples)."""
    found = re.findall(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, flags=re.DOTALL)
    return found[-1] if found else None


def read_json_block(prompt: str, tag: str) -> object:
    body = read_block(prompt, tag)
    if body is None:
        raise ModelOutputError(f"prompt has no <{tag}> block")
    return json.loads(body)


def candidates_from_prompt(prompt: str) -> tuple[Candidate, ...]:
    """The candidates block's paths and confidences; none when the prompt has no such block."""
    body = read_block(prompt, CANDIDATES_TAG)
    if body is None:
        return ()
    try:
        return Candidate.listed(json.loads(body))
    except ValueError as error:
        raise ModelOutputError(f"<{CANDIDATES_TAG}> block is unreadable: {error}") from error


def product_from_prompt(prompt: str) -> Mapping[str, str]:
    fields = read_json_block(prompt, "product")
    if not isinstance(fields, dict):
        raise ModelOutputError("<product> block is not a JSON object")
    return {str(k): str(v) for k, v in fields.items()}
