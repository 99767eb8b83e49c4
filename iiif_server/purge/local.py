"""Applying purges in this front process: every cache it holds, and its image workers'.

Layers, from the request inwards: hot copies and infos (`ImageService.purge`),
remembered name resolutions and downloaded web sources (the sources), decoded
images (one task broadcast to every image worker), derivatives on disk
(`DerivativeCache.purge`). Several purges are applied together, so a batch of
identifiers costs one broadcast and one pass over each index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cache import DerivativeCache, Selection
from ..imaging.render import purge_decoded
from ..service import ImageService
from ..sources.base import SourceScope
from ..workers import WorkerPool
from .message import Purge


@dataclass(frozen=True)
class PurgeReport:
    """What one process forgot: decoded images in its workers and derivatives on disk."""

    purges: int
    decoded: int
    derivatives: int


class LocalPurger:
    def __init__(
        self, service: ImageService, image_pool: WorkerPool, derivatives: DerivativeCache
    ) -> None:
        self._service = service
        self._image_pool = image_pool
        self._derivatives = derivatives

    async def apply(self, purges: Sequence[Purge], *, files: bool) -> PurgeReport:
        """Forget what `purges` name in every cache of this process.

        `files`: this process deletes the files the front processes share (derivatives,
        downloads); the others only forget their own memory of them. An unknown type
        (NotFound) or a bad name (BadRequest) raises before any worker or file is
        touched; purges before it in the batch are then applied in memory only,
        which is harmless (a purge costs at most a recomputation).
        """
        scopes: list[SourceScope] = []
        selections: list[Selection] = []
        for purge in purges:
            scope = self._service.purge(purge.type, purge.name, files=files)
            scopes.append(scope)
            selections.append(purge.selection(scope))
        if not purges:
            return PurgeReport(0, 0, 0)
        decoded = await self._image_pool.broadcast(purge_decoded, _union(scopes))
        derivatives = await self._derivatives.purge(_combined(selections), files=files)
        return PurgeReport(len(purges), sum(n or 0 for n in decoded), derivatives)


def _union(scopes: Sequence[SourceScope]) -> SourceScope:
    return SourceScope(
        everything=any(s.everything for s in scopes),
        paths=frozenset().union(*(s.paths for s in scopes)),
        folders=tuple(sorted({f for s in scopes for f in s.folders})),
    )


def _combined(selections: Sequence[Selection]) -> Selection:
    return Selection(
        everything=any(s.everything for s in selections),
        sources=frozenset().union(*(s.sources for s in selections)),
        types=frozenset().union(*(s.types for s in selections)),
    )
