"""What the sync and the asyncio classifier share: their settings and the retry policy."""

from __future__ import annotations

from typing import Any

from . import wire
from .types import CatalogError


class BaseClassifier:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        ssl: bool = False,
        root_certificates: str | None = None,
        model_name: str = wire.PRODUCT_MODEL,
    ) -> None:
        """Deadline `timeout_s` per call; `retries` with exponential backoff on UNAVAILABLE only."""
        self._client = self._connect(url, ssl, root_certificates)
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._model_name = model_name

    @staticmethod
    def _connect(url: str, ssl: bool, root_certificates: str | None) -> Any:
        raise NotImplementedError

    def _retry_delay(self, error: CatalogError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the error is final."""
        if error.status not in wire.RETRYABLE_STATUSES or attempt >= self._retries:
            return None
        return wire.backoff_delay(attempt, self._backoff_s)
