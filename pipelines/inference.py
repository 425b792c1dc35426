"""The server as a Beam `RunInference` model: each batch's products in flight at once over one gRPC channel.

`load_model` opens a `ProductClassifier`; RunInference shares it between the threads of a worker process, so a
process holds one channel however many bundles it runs. A batch's products are sent concurrently (the server
batches them again, in flight) with the client's deadline and UNAVAILABLE retries; whatever still fails comes
back as that product's `CatalogError`, never as an exception that would fail the bundle and repeat its calls.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from catalogvlm.client import CatalogError, Prediction, ProductClassifier, ProductEmbedding
from catalogvlm.errors import INTERNAL, UNAVAILABLE
from catalogvlm.pipeline.contract import PRODUCT_MODEL

from .records import DEFAULT_BATCH_SIZE, CatalogProduct

Outcome = Prediction | ProductEmbedding | CatalogError


@dataclass(frozen=True)
class ServerOptions:
    """How the pipeline reaches the server: address, deadline, retries and credentials (the client's own)."""

    url: str
    timeout_s: float = 120.0
    retries: int = 5
    backoff_s: float = 0.5
    api_key: str | None = None
    tls_ca: str | None = None
    model_name: str = PRODUCT_MODEL

    def classifier(self) -> ProductClassifier:
        tls = {"ssl": True, "root_certificates": self.tls_ca} if self.tls_ca else {}
        return ProductClassifier(
            self.url,
            timeout_s=self.timeout_s,
            retries=self.retries,
            backoff_s=self.backoff_s,
            api_key=self.api_key,
            model_name=self.model_name,
            **tls,
        )


@dataclass(frozen=True)
class BatchOptions:
    """`BatchElements` bounds. A worker holds at most max_batch_size images per bundle it runs at once (see
    `--number_of_worker_harness_threads`), so these two settings bound a worker's image memory.

    Batches never wait across bundles (no `max_batch_duration_secs`): that stateful batching is not run by the
    DirectRunner in batch mode, and under TestStream it lost the last batch of each step; a streaming update
    is sent as soon as its bundle runs, and the server batches what is in flight anyway."""

    min_batch_size: int = 1
    max_batch_size: int = DEFAULT_BATCH_SIZE


class ProductModelHandler(ModelHandler[CatalogProduct, PredictionResult, ProductClassifier]):
    """`operation`: the client's method each product goes through: `classify` (product_understanding) or `embed`
    (product_embeddings)."""

    def __init__(
        self,
        server: ServerOptions,
        batching: BatchOptions,
        read_image: Callable[[str], bytes],
        operation: str = "classify",
    ) -> None:
        super().__init__(
            min_batch_size=batching.min_batch_size,
            max_batch_size=batching.max_batch_size,
        )
        self._server = server
        self._read_image = read_image
        self._operation = operation

    def load_model(self) -> ProductClassifier:
        classifier = self._server.classifier()
        atexit.register(classifier.close)  # closed while the interpreter still can, not in __del__ at exit
        return classifier

    def run_inference(
        self,
        batch: Sequence[CatalogProduct],
        model: ProductClassifier,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        with ThreadPoolExecutor(max_workers=max(1, len(batch)), thread_name_prefix="catalogvlm-call") as pool:
            outcomes = list(pool.map(lambda product: self._call(model, product), batch))
        return [PredictionResult(product, outcome) for product, outcome in zip(batch, outcomes, strict=True)]

    def _call(self, model: ProductClassifier, product: CatalogProduct) -> Outcome:
        try:
            image = self._read_image(product.image_uri) if product.image_uri else None
        except OSError as error:  # it was readable when fingerprinted: a storage hiccup, worth a later try
            return CatalogError(UNAVAILABLE, f"image: cannot read {product.image_uri} again: {error}")
        try:
            return getattr(model, self._operation)(product.product(image))
        except CatalogError as error:
            return error
        except Exception as error:
            return CatalogError(INTERNAL, f"{type(error).__name__}: {error}")

    def get_metrics_namespace(self) -> str:
        return "catalogvlm"

    def share_model_across_processes(self) -> bool:
        return False  # a gRPC channel is cheap and cannot cross processes: one per process
