"""Applying purges in this front process: every cache it holds, and its image workers'.

Layers, from the request inwards: hot copies and infos (`ImageService.purge`),
remembered name resolutions and downloaded web sources (the sources), decoded
images (one task broadcast to every image worker), derivatives on disk
(`DerivativeCache.purge`), and, where the purge was asked for, what the nodes
share (`SharedTiers.purge`: the bucket's derivatives, infos in Redis). Several
purges are applied together, so a batch of identifiers costs one broadcast and
one pass over each index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..cache import DerivativeCache, Selection
from ..imaging.render import purge_decoded
from ..pools import Pool
from ..service import ImageService
from ..shared.tiers import SharedTiers
from ..sources.base import SourceScope
from .message import Purge


@dataclass(frozen=True)
class PurgeReport:
    """What one process forgot: decoded images in its workers and derivatives on disk."""

    purges: int
    decoded: int
    derivatives: int
    # Deleted from the shared tiers (None: unreachable, or not asked for here).
    shared_derivatives: int | None = None
    shared_infos: int | None = None


class LocalPurger:
    def __init__(
        self,
        service: ImageService,
        image_pool: Pool,
        derivatives: DerivativeCache,
        shared: SharedTiers | None = None,
    ) -> None:
        self._shared = shared
        self._service = service
        self._image_pool = image_pool
        self._derivatives = derivatives

    async def apply(
        self, purges: Sequence[Purge], *, files: bool, shared: bool = False
    ) -> PurgeReport:
        """Forget what `purges` name in every cache of this process.

        `files`: this process deletes the files the front processes share (derivatives,
        downloads); the others only forget their own memory of them. An unknown type
        (NotFound) or a bad name (BadRequest) raises before any worker or file is
        touched; purges before it in the batch are then applied in memory only,
        which is harmless (a purge costs at most a recomputation).
        `shared`: this process also deletes what all nodes share (once per purge).
        """
        scopes: list[SourceScope] = []
        selections: list[Selection] = []
        for purge in purges:
            scope = await self._service.purge(purge.type, purge.name, files=files)
            scopes.append(scope)
            selections.append(purge.selection(scope))
        if not purges:
            return PurgeReport(0, 0, 0)
        decoded = await self._image_pool.broadcast(purge_decoded, _union(scopes))
        derivatives = await self._derivatives.purge(_combined(selections), files=files)
        if self._shared is not None and self._shared.derivatives is not None:
            self._shared.derivatives.bundles.forget()
        report = PurgeReport(len(purges), sum(n or 0 for n in decoded), derivatives)
        if shared and self._shared is not None:
            counts: list[dict[str, int | None]] = []
            for purge, scope in zip(purges, scopes, strict=True):
                paths = None if purge.name is None else scope.paths
                counts.append(await self._shared.purge(purge.type, paths))
            report = dataclasses.replace(
                report,
                shared_derivatives=_total(c["shared_derivatives"] for c in counts),
                shared_infos=_total(c["shared_infos"] for c in counts),
            )
        return report


def _total(counts: Iterable[int | None]) -> int | None:
    values = list(counts)
    return None if None in values else sum(v for v in values if v is not None)


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
