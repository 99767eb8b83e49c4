"""Identifiers `type:name` -> the configured type's source."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings, TypeSettings
from ..errors import NotFound, NotImplementedFeature
from .base import Source, SourceFile
from .disk import DiskSource


@dataclass(frozen=True)
class Identifier:
    type: TypeSettings
    name: str


class _NotYetAvailable:
    """Web kinds are configured and validated already; fetching them comes later."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    async def resolve(self, name: str) -> SourceFile:
        raise NotImplementedFeature(f"'{self._kind}' sources are not available in this version")


class SourceRegistry:
    def __init__(self, settings: Settings) -> None:
        self._types = settings.types
        self._default_type = settings.default_type
        self._sources: dict[str, Source] = {}
        for name, type_settings in settings.types.items():
            if type_settings.source == "disk":
                self._sources[name] = DiskSource(settings.source_path / name)
            else:
                self._sources[name] = _NotYetAvailable(type_settings.source)

    def parse(self, identifier: str) -> Identifier:
        """`type:name`, or a bare name of the default type; unknown types are a 404."""
        type_name, colon, name = identifier.partition(":")
        if not colon:
            if self._default_type is None:
                raise NotFound(f"identifier {identifier!r} has no type and there is no default")
            type_name, name = self._default_type, identifier
        type_settings = self._types.get(type_name)
        if type_settings is None:
            raise NotFound(f"unknown identifier type {type_name!r}")
        return Identifier(type_settings, name)

    async def resolve(self, identifier: Identifier) -> SourceFile:
        return await self._sources[identifier.type.name].resolve(identifier.name)
