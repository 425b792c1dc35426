"""Product embeddings: a normalised text vector for every product and an image vector for those with an image,
for semantic search and recommendations. Served by the `product_embeddings` model (every profile), written by
`catalogvlm embed`. The encoders run on the CPU (pipeline/cpu/); each batch is one pass per encoder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from .contract import Product
from .images import decoded_rgb
from .limits import Limits, cut_at_word
from .product import product_from_raw

# The text a product is embedded by, most telling first. The vendor is left out: it names the store, not the
# product, and would pull a store's products together whatever they are. The description's opening is what
# describes the product (the rest is care, shipping, sizes); past 200 characters it added nothing measurable and
# cost 2.4x the time (measured with all-MiniLM-L6-v2 on the dev products: precision@10 0.525 at 200 characters,
# vendor left out; 0.517 with the vendor; 0.500 with the whole description, at 10.5 products/s against 24.9).
EMBEDDED_FIELDS = ("title", "product_type", "tags", "description")
DESCRIPTION_CHARS = 200


class Encoder(Protocol):
    def encode(self, items: Sequence) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderInfo:
    model: str
    dim: int


@dataclass(frozen=True)
class EmbeddingRequest:
    text: str  # embedding_text
    image: Image.Image | None  # decoded once, shrunk to HELD_IMAGE_SIDE


@dataclass(frozen=True)
class ProductVectors:
    text: np.ndarray  # float32 (text dim,), unit length
    image: np.ndarray | None  # float32 (image dim,), unit length; None without an image


def embedding_text(product: Product) -> str:
    fields = product.text_fields()
    if "description" in fields:
        fields["description"] = cut_at_word(fields["description"], DESCRIPTION_CHARS)
    return "\n".join(fields[name] for name in EMBEDDED_FIELDS if name in fields)


def embedding_request(raw: Mapping[str, bytes | None], image: bytes | None, limits: Limits) -> EmbeddingRequest:
    """A request's product checked as product_understanding checks one (InvalidInput naming the field), and its
    image decoded once: the decode is the check, and what it yields is what the encoder reads."""
    product = product_from_raw(raw, None, limits).product
    return EmbeddingRequest(embedding_text(product), None if image is None else _decoded(image, limits))


class ProductEmbedder:
    def __init__(self, text: Encoder, text_info: EncoderInfo, image: Encoder, image_info: EncoderInfo) -> None:
        self._text, self._image = text, image
        self.info = {"text": text_info, "image": image_info}

    @classmethod
    def on_cpu(cls, text_model: str) -> ProductEmbedder:
        from .cpu import product_encoders as encoders

        text, width = encoders.text_encoder(text_model)
        return cls(
            text,
            EncoderInfo(text_model, width),
            encoders.ImageEncoder(),
            EncoderInfo(encoders.IMAGE_MODEL, encoders.IMAGE_WIDTH),
        )

    def models_json(self) -> str:
        """What the vectors are, for the response: each encoder's model and dimension."""
        return json.dumps({kind: {"model": i.model, "dim": i.dim} for kind, i in self.info.items()})

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[ProductVectors]:
        if not requests:
            return []
        texts = self._text.encode([r.text for r in requests])
        with_image = [i for i, r in enumerate(requests) if r.image is not None]
        vectors = self._image.encode([requests[i].image for i in with_image]) if with_image else []
        images = dict(zip(with_image, vectors, strict=True))
        return [ProductVectors(texts[i], images.get(i)) for i in range(len(requests))]


# A decoded image is shrunk at once to a little over the encoder's input: a batch then holds ~0.8 MB per image
# however large the uploads (a 2400x1800 photo decodes to 13 MB).
HELD_IMAGE_SIDE = 512


def _decoded(data: bytes, limits: Limits) -> Image.Image:
    with decoded_rgb(data, limits) as image:  # decoding runs under the process's in-flight image bound
        image.thumbnail((HELD_IMAGE_SIDE, HELD_IMAGE_SIDE))
        return image
