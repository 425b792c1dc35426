"""A bounded cache of successful results: the same product (one item listed by many stores, a catalog run
again) is answered without a model call.

Only successes are kept. Triton's own response cache cannot be used for this model: Triton (2.51, and its
core at HEAD, dynamic_batch_scheduler.cc `DelegateResponse`) inserts every response, errors included, and
replays a cached error as a successful response with no outputs; measured here, a request refused with
UNAVAILABLE came back empty on its retry. Living in the service, the cache also serves Dynamo.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from cachetools import LRUCache

from .product import TEXT_FIELDS


class ResultCache:
    """Result JSON by request digest, least recently used first out, bounded by the bytes it holds."""

    def __init__(self, max_bytes: int) -> None:
        self._results: LRUCache[str, str] | None = LRUCache(max_bytes, getsizeof=len) if max_bytes > 0 else None

    @property
    def enabled(self) -> bool:
        return self._results is not None

    @staticmethod
    def key(raw: Mapping[str, bytes | str | None], image: bytes | None) -> str:
        """A digest of everything the answer depends on in the request: each text field and the image."""
        digest = hashlib.sha256()
        for name in TEXT_FIELDS:
            field = raw.get(name) or b""
            value = field.encode("utf-8", "surrogatepass") if isinstance(field, str) else field
            digest.update(len(value).to_bytes(8, "little") + value)
        digest.update(b"image" + hashlib.sha256(image).digest() if image is not None else b"no image")
        return digest.hexdigest()

    def get(self, key: str) -> str | None:
        return self._results.get(key) if self._results is not None else None

    def put(self, key: str, result: str) -> None:
        if self._results is not None and len(result) <= self._results.maxsize:
            self._results[key] = result
