"""The state of a connection to a shared service: up, or down since a failure.

After a failure the service is not asked again for `pause` seconds: a dead Redis or
store then costs one short timeout every few seconds, not one per request. The
warning is logged once per `pause` at most, and `/health` shows the state.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


class Link:
    def __init__(self, name: str, address: str, *, pause: float = 5.0) -> None:
        self.name = name
        self.address = address
        self.pause = pause
        self.errors = 0
        self.last_error: str | None = None
        self._down_since: float | None = None  # time.time() of the first failure in a row
        self._retry_at = 0.0  # time.monotonic()
        self._warned_at = -float("inf")

    @property
    def up(self) -> bool:
        return self._down_since is None

    def available(self) -> bool:
        """False while pausing after a failure: callers go without the service."""
        return self._down_since is None or time.monotonic() >= self._retry_at

    def failed(self, error: BaseException | str) -> None:
        self.errors += 1
        self.last_error = str(error) or type(error).__name__
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = time.time()
        self._retry_at = now + self.pause
        if now - self._warned_at >= self.pause:
            self._warned_at = now
            logger.warning(
                "%s at %s is unavailable (%s); serving without it",
                self.name,
                self.address,
                self.last_error,
            )

    def succeeded(self) -> None:
        if self._down_since is not None:
            logger.warning("%s at %s is back", self.name, self.address)
            self._down_since = None

    def health(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": "ok" if self.up else "unavailable",
            "down_since": self._down_since,
            "errors": self.errors,
            "last_error": self.last_error,
        }
