"""`/health`: for container health checks and load balancers."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from ..event_loop import running_kind
from .base import BaseHandler

if TYPE_CHECKING:
    from ..app import Server


class HealthHandler(BaseHandler):
    def initialize(self, server: Server) -> None:
        self.server = server

    def get(self) -> None:
        pools = [self.server.size_pool.status(), self.server.image_pool.status()]
        pids = [self.server.size_pool.pids, self.server.image_pool.pids]
        healthy = all(pool.live > 0 and not pool.closing for pool in pools)
        self.set_status(200 if healthy else 503)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {
                "status": "ok" if healthy else "unavailable",
                "process": os.getpid(),  # which front process answered (`processes` > 1)
                "event_loop": running_kind(),
                # With `processes` > 1 every front shows the same shared pools (and pids).
                "pools": [
                    {**dataclasses.asdict(pool), "pids": workers}
                    for pool, workers in zip(pools, pids, strict=True)
                ],
                "derivative_cache": dataclasses.asdict(self.server.derivatives.stats()),
                **{product.name: product.health() for product in self.server.products},
                # Shared tiers down: still healthy (served from this node), but said.
                **({} if self.server.shared is None else {"warnings": self.server.shared.warnings}),
            }
        )

    head = get
