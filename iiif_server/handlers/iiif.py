"""The Image API endpoints of both versions: base URI, info.json and image requests."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from ..config import Settings
from ..iiif.info import CONTEXT, PROFILE, info_document
from ..iiif.params import FORMATS, Version
from ..service import ImageService, ResolvedImage
from .base import BaseHandler
from .forwarded import public_root

# One path segment: an identifier (slashes in it arrive encoded) or a parameter.
_SEGMENT = r"([^/]+)"


def info_content_type(api: Version, accept: str) -> str:
    """3.0 answers JSON-LD unless plain JSON is asked for; 2.1 the other way round."""
    if api == 3:
        if "application/json" in accept and "application/ld+json" not in accept:
            return "application/json"
        return f'application/ld+json;profile="{CONTEXT[3]}"'
    if "application/ld+json" in accept:
        return f'application/ld+json;profile="{CONTEXT[2]}"'
    return "application/json"


class IIIFHandler(BaseHandler):
    def initialize(self, service: ImageService, settings: Settings) -> None:
        self.service = service
        self.config = settings

    def service_id(self, version: str) -> str:
        """The image's base URI exactly as the client spelled it (still percent-encoded)."""
        # Routes are anchored: the path starts with /iiif/{version}/{identifier}.
        base = "/".join(self.request.path.split("/")[:4])
        return public_root(self.request, self.config.base_url) + base

    def set_last_modified(self, image: ResolvedImage) -> datetime:
        modified, text = image.last_modified
        self.set_header("Last-Modified", text)
        return modified


class BaseURIHandler(IIIFHandler):
    def get(self, version: str, identifier: str) -> None:
        del identifier  # the redirect keeps the client's own spelling of it
        self.redirect(self.service_id(version) + "/info.json", status=303)

    head = get


class InfoHandler(IIIFHandler):
    async def get(self, version: str, identifier: str) -> None:
        api: Version = 3 if version == "3" else 2
        image = await self.service.describe(identifier)
        self.service.described(image)
        document = info_document(
            api, self.service_id(version), image.info, self.service.info_options(image)
        )
        body = json.dumps(document, separators=(",", ":")).encode()
        accept = self.request.headers.get("Accept", "")
        self.set_header("Content-Type", info_content_type(api, accept))
        self.set_header("Vary", "Accept")
        self.set_header("Link", f'<{PROFILE[api]}>;rel="profile"')
        self.set_header("Cache-Control", self.config.cache_control)
        modified = self.set_last_modified(image)
        # info.json is small and built in memory: hashing it is cheap.
        etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        self.set_header("ETag", etag)
        if self.not_modified(etag, modified):
            self.set_status(304)
            return
        self.finish(body)

    head = get


class ImageHandler(IIIFHandler):
    async def get(
        self,
        version: str,
        identifier: str,
        region: str,
        size: str,
        rotation: str,
        quality_format: str,
    ) -> None:
        api: Version = 3 if version == "3" else 2
        hot = self.service.hot(self.request.path)
        if hot is not None:
            derivative, body = hot.derivative, hot.body
        else:
            image = await self.service.resolve(identifier)
            derivative = self.service.plan(image, api, region, size, rotation, quality_format)
            body = None
        service_id = self.service_id(version)
        self.set_header("Content-Type", FORMATS[derivative.request.format])
        canonical = f"{service_id}/{derivative.canonical}"
        self.set_header("Link", f'<{PROFILE[api]}>;rel="profile", <{canonical}>;rel="canonical"')
        self.set_header("Cache-Control", self.config.cache_control)
        self.set_header("ETag", derivative.etag)
        modified = self.set_last_modified(derivative.image)
        if self.not_modified(derivative.etag, modified):
            self.set_status(304)
            self.clear_header("Content-Type")
            return
        if body is None:
            body = self.service.cached(derivative)
            if body is None:
                body = await self.service.render(derivative)
            self.service.remember(self.request.path, derivative, body)
        self.finish(body)

    head = get


def routes(service: ImageService, settings: Settings) -> list[tuple[str, type, dict[str, object]]]:
    kwargs: dict[str, object] = {"service": service, "settings": settings}
    version = r"/iiif/(2|3)/"
    return [
        (version + _SEGMENT + r"/info\.json", InfoHandler, kwargs),
        (version + _SEGMENT + ("/" + _SEGMENT) * 4, ImageHandler, kwargs),
        (version + _SEGMENT, BaseURIHandler, kwargs),
    ]
