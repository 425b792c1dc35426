"""The asyncio client (tritonclient.grpc.aio), for services that are async already."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

import tritonclient.grpc.aio as grpcaio
from tqdm.asyncio import tqdm_asyncio
from tritonclient.utils import InferenceServerException

from catalogvlm.pipeline.contract import Product

from . import wire
from .base import BaseClassifier
from .types import CatalogError, CategoryResult, Prediction


class AsyncProductClassifier(BaseClassifier):
    @staticmethod
    def _connect(url: str, tls: dict[str, Any]) -> Any:
        return grpcaio.InferenceServerClient(url, **tls)

    async def classify(self, product: Product) -> Prediction:
        started = time.perf_counter()
        response = await self._call(self._model_name, wire.product_inputs(product, grpcaio.InferInput))
        return Prediction.from_result(wire.result_json(response), time.perf_counter() - started)

    async def classify_many(
        self, products: Iterable[Product], concurrency: int = 8, progress: bool = True
    ) -> list[Prediction | CatalogError]:
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(product: Product) -> Prediction | CatalogError:
            async with gate:
                try:
                    return await self.classify(product)
                except CatalogError as error:
                    return error

        tasks = [one(p) for p in products]
        return await tqdm_asyncio.gather(*tasks, disable=not progress, unit="product")

    async def validate_categories(self, categories: Sequence[str]) -> list[CategoryResult]:
        response = await self._call(wire.VALIDATE_MODEL, wire.category_inputs(categories, grpcaio.InferInput))
        return wire.category_results(response)

    async def _call(self, model: str, inputs: list[Any]) -> Any:
        attempt = 0
        while True:
            try:
                return await self._client.infer(model, inputs, headers=self._headers, client_timeout=self._timeout_s)
            except InferenceServerException as raw:
                error = wire.as_catalog_error(raw)
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise error from None
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        connection = self._take_connection()
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> AsyncProductClassifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
