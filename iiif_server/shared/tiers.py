"""The shared parts of one front process, as a product: built from the settings,
started and stopped with the server, and shown in `/health` under `shared`."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..products import Route
from ..sources.s3_config import S3Settings
from .derivatives import SharedDerivatives
from .infos import SharedInfos
from .keys import SharedNames
from .redis_link import RedisLink


def node_id(cache_path: Path) -> str:
    """This node: its front processes share the host and the cache folder."""
    place = f"{socket.gethostname()}|{Path(cache_path).absolute()}"
    return hashlib.sha256(place.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class SharedTiers:
    name = "shared"

    def __init__(
        self, cache: S3Settings | None, info: str | None, source_path: Path, cache_path: Path
    ) -> None:
        self.node = node_id(cache_path)
        names = SharedNames(source_path, cache_path)
        self.derivatives = None if cache is None else SharedDerivatives(cache, names)
        self.redis = None if info is None else RedisLink(info)
        self.infos = None if self.redis is None else SharedInfos(self.redis, names)

    async def start(self) -> None:
        pass  # connections are made on first use, and remade after a failure

    async def stop(self) -> None:
        if self.derivatives is not None:
            await self.derivatives.flush()
            self.derivatives.close()
        if self.redis is not None:
            await self.redis.close()

    def routes(self) -> list[Route]:
        return []

    def health(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"node": self.node}
        if self.derivatives is not None:
            parts["derivatives"] = self.derivatives.health()
        if self.redis is not None and self.infos is not None:
            parts["redis"] = {**self.redis.link.health(), "infos": self.infos.health()}
        return parts

    @property
    def warnings(self) -> list[str]:
        """What is down right now, for the log and `/health`."""
        links = [
            part.link
            for part in (self.derivatives, self.redis)
            if part is not None and not part.link.up
        ]
        return [f"{link.name} unavailable: {link.last_error}" for link in links]

    async def purge(self, type_name: str | None, paths: Iterable[str] | None) -> dict[str, Any]:
        """Forget the shared derivatives and infos of some sources of a type, of a type, or
        (type None) of everything; the counts (None where a part was unreachable)."""
        paths = None if paths is None else frozenset(paths)
        derivatives = infos = None
        if self.derivatives is not None:
            derivatives = await self.derivatives.purge(type_name, paths)
        if self.redis is not None and self.infos is not None:
            # Infos are not grouped by type: a type's purge forgets them all (re-probed).
            scope = None if type_name is None or paths is None else paths
            infos = await self.redis.call(self.infos.purge(scope), None)
        return {"shared_derivatives": derivatives, "shared_infos": infos}
