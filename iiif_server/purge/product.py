"""The purge product: the admin route, the journal it publishes to and follows, its health.

Mounted only with an `admin_token`. A purge is applied at once in the front
process that received it (which also deletes the shared files), then
published for the other front processes, which apply it in memory within the
journal's interval; the answer waits until they have (`fronts.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest
from ..handlers.admin import PurgeHandler
from ..products import Route
from ..service import ImageService
from .broadcast import RedisBroadcast
from .journal import PurgeJournal
from .local import LocalPurger, PurgeReport
from .message import Purge

if TYPE_CHECKING:
    from ..app import Server
    from ..config import Settings

logger = logging.getLogger(__name__)
# How long an answer waits for the other front processes to apply a purge. They
# apply it within the journal's interval, unless a worker is busy with a long task
# (the purge's task to it waits its turn).
_CONFIRM_SECONDS = 10.0


def purge_product(settings: Settings, server: Server) -> PurgeProduct:
    assert settings.admin_token is not None, "the admin API is off without a token"
    shared = server.shared
    broadcast = None
    if shared is not None and shared.redis is not None:
        position = settings.cache_path / "purge" / "broadcast-position"
        broadcast = RedisBroadcast(shared.redis, shared.node, position)
    return PurgeProduct(
        settings.admin_token,
        PurgeJournal(settings.cache_path / "purge"),
        server.service,
        LocalPurger(server.service, server.image_pool, server.derivatives, shared),
        broadcast,
    )


class PurgeProduct:
    name = "purge"

    def __init__(
        self,
        token: str,
        journal: PurgeJournal,
        service: ImageService,
        local: LocalPurger,
        broadcast: RedisBroadcast | None = None,
    ) -> None:
        self._token = token
        self._journal = journal
        self._service = service
        self._local = local
        self._broadcast = broadcast
        self.received = 0  # purges asked for here
        self.followed = 0  # purges applied from other front processes

    async def start(self) -> None:
        self._journal.start(self._apply_published)
        if self._broadcast is not None:
            self._broadcast.start(self._apply_broadcast)

    async def stop(self) -> None:
        if self._broadcast is not None:
            await self._broadcast.stop()
        await self._journal.stop()

    def routes(self) -> list[Route]:
        return [(r"/admin/purge", PurgeHandler, {"token": self._token, "purger": self})]

    def health(self) -> dict[str, Any]:
        health = {"received": self.received, "followed": self.followed}
        if self._broadcast is not None:
            health["from_other_nodes"] = self._broadcast.received
            health["caught_up_after_a_cut"] = self._broadcast.caught_up
        return health

    async def purge(
        self, identifiers: list[str], type_name: str | None, everything: bool
    ) -> dict[str, Any]:
        """Apply here and publish; the JSON answer of the admin API."""
        purges = self.parse(identifiers, type_name, everything)
        report = await self._local.apply(purges, files=True, shared=True)
        position = self._journal.publish(purges)
        nodes = None if self._broadcast is None else await self._broadcast.publish(purges)
        self.received += len(purges)
        logger.info("purged %s", ", ".join(str(purge) for purge in purges[:10]))
        others = await self._journal.confirmed(position, _CONFIRM_SECONDS)
        return {
            "purged": [str(purge) for purge in purges],
            **dataclasses.asdict(report),
            "other_processes": dataclasses.asdict(others),
            **({} if self._broadcast is None else {"processes_listening": nodes}),
        }

    def parse(self, identifiers: list[str], type_name: str | None, everything: bool) -> list[Purge]:
        try:
            if everything:
                return [Purge()]
            if type_name is not None:
                return [Purge(type_name)]
            return [Purge(*self._service.parse_identifier(i)) for i in identifiers]
        except ValueError as error:
            raise BadRequest(str(error)) from None

    async def _apply_broadcast(self, purges: list[Purge], files: bool) -> PurgeReport:
        report = await self._local.apply(purges, files=files)
        self.followed += len(purges)
        return report

    async def _apply_published(self, purges: list[Purge]) -> PurgeReport:
        report = await self._local.apply(purges, files=False)
        self.followed += len(purges)
        return report
