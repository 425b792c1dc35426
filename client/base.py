"""What the sync and the asyncio classifier share: their settings and the retry policy."""

from __future__ import annotations

from typing import Any

from catalogvlm.pipeline.contract import API_KEY_HEADER

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
        private_key: str | None = None,
        certificate_chain: str | None = None,
        api_key: str | None = None,
        model_name: str = wire.PRODUCT_MODEL,
    ) -> None:
        """Deadline `timeout_s` per call; `retries` with exponential backoff on UNAVAILABLE only. TLS with `ssl`
        (`root_certificates`: the server's CA, PEM file; `private_key` and `certificate_chain`: this client's, for
        mutual TLS); `api_key` is sent with every call when the server restricts inference (`serve --api-key`)."""
        tls = {"ssl": ssl, "root_certificates": root_certificates}
        tls |= {"private_key": private_key, "certificate_chain": certificate_chain}
        self._connection: Any = self._connect(url, tls)
        self._headers = {API_KEY_HEADER: api_key} if api_key else None
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._model_name = model_name

    @staticmethod
    def _connect(url: str, tls: dict[str, Any]) -> Any:
        raise NotImplementedError

    @property
    def _client(self) -> Any:
        if self._connection is None:
            raise RuntimeError("this classifier is closed")
        return self._connection

    def _take_connection(self) -> Any:
        """The connection, for closing. The classifier lets go of it, so tritonclient's `__del__` runs now and
        not at interpreter exit, where grpc is half torn down and prints a traceback."""
        connection, self._connection = self._connection, None
        return connection

    def _retry_delay(self, error: CatalogError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the error is final."""
        if error.status not in wire.RETRYABLE_STATUSES or attempt >= self._retries:
            return None
        return wire.backoff_delay(attempt, self._backoff_s)
