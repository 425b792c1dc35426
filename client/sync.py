"""The synchronous client (tritonclient.grpc): one call at a time, or many with a thread pool."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import tritonclient.grpc as grpcclient
from tqdm import tqdm
from tritonclient.utils import InferenceServerException

from catalogvlm.pipeline.contract import EMBEDDINGS_MODEL, Product

from . import wire
from .base import BaseClassifier
from .types import CatalogError, CategoryResult, ModelRelease, Prediction, ProductEmbedding

T = TypeVar("T")


class ProductClassifier(BaseClassifier):
    """`classify` a product through `product_understanding` on Triton or Dynamo (KServe v2 gRPC)."""

    @staticmethod
    def _connect(url: str, tls: dict[str, Any]) -> Any:
        return grpcclient.InferenceServerClient(url, **tls)

    def classify(self, product: Product) -> Prediction:
        started = time.perf_counter()
        response = self._call(self._model_name, wire.product_inputs(product, grpcclient.InferInput))
        return Prediction.from_result(wire.result_json(response), time.perf_counter() - started)

    def classify_many(
        self, products: Iterable[Product], concurrency: int = 4, progress: bool = True
    ) -> list[Prediction | CatalogError]:
        """Results in input order; a failed product yields its CatalogError instead of stopping the rest."""
        items = list(products)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = pool.map(lambda p: _capture(self.classify, p), items)
            return list(tqdm(futures, total=len(items), disable=not progress, unit="product"))

    def embed(self, product: Product) -> ProductEmbedding:
        """The product's text vector (and image vector, with an image) from `product_embeddings`."""
        return wire.product_embedding(
            self._call(EMBEDDINGS_MODEL, wire.product_inputs(product, grpcclient.InferInput, True))
        )

    def validate_categories(self, categories: Sequence[str]) -> list[CategoryResult]:
        response = self._call(wire.VALIDATE_MODEL, wire.category_inputs(categories, grpcclient.InferInput))
        return wire.category_results(response)

    def model_release(self) -> ModelRelease:
        """The served model's name and newest version (metadata) and what its config reports it answers with."""
        try:
            metadata = self._client.get_model_metadata(self._model_name, headers=self._headers, as_json=True)
            config = self._client.get_model_config(self._model_name, headers=self._headers, as_json=True)
        except InferenceServerException as raw:
            raise wire.as_catalog_error(raw) from None
        return wire.model_release(metadata, config)

    def is_ready(self) -> bool:
        try:
            return bool(self._client.is_model_ready(self._model_name, headers=self._headers))
        except InferenceServerException:
            return False

    def _call(self, model: str, inputs: list[Any]) -> Any:
        attempt = 0
        while True:
            try:
                return self._client.infer(model, inputs, headers=self._headers, client_timeout=self._timeout_s)
            except InferenceServerException as raw:
                error = wire.as_catalog_error(raw)
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise error from None
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        connection = self._take_connection()
        if connection is not None:
            connection.close()

    def __enter__(self) -> ProductClassifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _capture(call: Callable[[Product], T], product: Product) -> T | CatalogError:
    try:
        return call(product)
    except CatalogError as error:
        return error
