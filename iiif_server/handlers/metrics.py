"""`/metrics`: Prometheus text format; open unless `metrics_need_token`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST

from .admin import require_bearer
from .base import BaseHandler

if TYPE_CHECKING:
    from ..metrics.collect import Metrics


class MetricsHandler(BaseHandler):
    def initialize(self, metrics: Metrics, token: str | None) -> None:
        self.metrics = metrics
        self.token = token

    def prepare(self) -> None:
        super().prepare()
        if self.token is not None:
            require_bearer(self, self.token)

    async def get(self) -> None:
        body = await self.metrics.exposition()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: object) -> None:
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="iiif-server"')
        super().write_error(status_code, **kwargs)
