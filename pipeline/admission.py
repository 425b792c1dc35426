"""Back-pressure for one serving process: how many products (and how many image bytes) it carries at once.

Past either bound a request is refused at once with `Overloaded` (UNAVAILABLE, which clients retry with
backoff) instead of queueing without limit; while shutting down, every new request is refused the same way.
The event loop is single-threaded, so the counts need no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from .errors import Overloaded


class AdmissionObserver(Protocol):
    def inflight_changed(self, count: int) -> None: ...
    def request_refused(self, reason: str) -> None: ...


class Admission:
    def __init__(self, max_inflight: int, max_inflight_image_bytes: int, observer: AdmissionObserver) -> None:
        self.max_inflight = max_inflight
        self.max_inflight_image_bytes = max_inflight_image_bytes
        self._observer = observer
        self.inflight = 0
        self.image_bytes = 0
        self.closing = False

    @contextmanager
    def admit(self, image_bytes: int) -> Iterator[None]:
        """Hold a place for one product for the duration of the block, or raise Overloaded at once."""
        self._check(image_bytes)
        self.inflight += 1
        self.image_bytes += image_bytes
        self._observer.inflight_changed(self.inflight)
        try:
            yield
        finally:
            self.inflight -= 1
            self.image_bytes -= image_bytes
            self._observer.inflight_changed(self.inflight)

    def _check(self, image_bytes: int) -> None:
        if self.closing:
            self._refuse("shutting_down", "the server is shutting down; retry on another instance")
        if self.inflight >= self.max_inflight:
            self._refuse("max_inflight", f"this instance already carries {self.inflight} products (max_inflight)")
        if self.inflight and self.image_bytes + image_bytes > self.max_inflight_image_bytes:
            self._refuse(
                "max_inflight_image_bytes",
                f"images in flight would exceed {self.max_inflight_image_bytes:,} bytes (max_inflight_image_bytes)",
            )

    def _refuse(self, reason: str, message: str) -> None:
        self._observer.request_refused(reason)
        raise Overloaded(f"overloaded: {message}")
