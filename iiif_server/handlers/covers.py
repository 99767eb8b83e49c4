"""`/cover` (the Coce/Cover API that Koha calls) and `/set` (manual overrides, bearer token)."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from ..covers.service import CoverService
from ..errors import BadRequest, ServerError
from .base import BaseHandler

# JavaScript identifiers joined by dots (`jQuery123_456`, `app.covers.show`): anything
# else in a JSONP callback would let a page's attacker run script on our origin.
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
_MAX_CALLBACK = 128


class _JsonHandler(BaseHandler):
    """Errors as `{"error": "..."}`, which is what cover clients parse."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("error")
        message = error.message if isinstance(error, ServerError) else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"error": message}))


class CoverHandler(_JsonHandler):
    def initialize(self, service: CoverService) -> None:
        self.service = service

    async def get(self) -> None:
        arguments = self.request.query_arguments  # `_` (jQuery's cache buster) is ignored
        callback = _last(arguments, "callback")
        if callback is not None and not (
            len(callback) <= _MAX_CALLBACK and _CALLBACK.fullmatch(callback)
        ):
            raise BadRequest("callback must be a JavaScript name (letters, digits, _, $, dots)")
        ids = self.service.parse_ids(_last(arguments, "id"))
        providers = self.service.parse_providers(_last(arguments, "provider"))
        answer = await self.service.covers(ids, providers, all_="all" in arguments)
        body = json.dumps(answer, separators=(",", ":"))
        if callback is None:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(body)
        else:
            self.set_header("Content-Type", "application/javascript; charset=utf-8")
            self.finish(f"{callback}({body})")


class SetHandler(_JsonHandler):
    """Coce's `/set?provider=P&id=ID&url=URL`, here only with `Authorization: Bearer TOKEN`."""

    def initialize(self, service: CoverService) -> None:
        self.service = service

    async def get(self) -> None:
        token = self.service.settings.set_token
        if token is None:
            self.set_status(403)
            self.finish({"error": "/set is off: no covers.set_token is configured"})
            return
        offered = self.request.headers.get("Authorization", "")
        scheme, _, credentials = offered.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="covers"')
            self.finish({"error": "a valid bearer token is needed"})
            return
        provider, identifier, url = (
            self.get_argument(name, "") for name in ("provider", "id", "url")
        )
        ttl_text = self.get_argument("ttl", None)
        ttl = _ttl(ttl_text) if ttl_text is not None else None
        key = await self.service.override(provider, identifier, url, ttl)
        self.finish({"id": identifier, "key": key, "provider": provider, "url": url})

    post = get


def _ttl(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 10 * 365 * 86400:
        raise BadRequest("ttl must be a number of seconds, at most ten years")
    return value


def _last(arguments: dict[str, list[bytes]], name: str) -> str | None:
    values = arguments.get(name)
    return values[-1].decode("utf-8", "replace") if values else None


def routes(service: CoverService) -> list[Any]:
    return [
        (r"/cover", CoverHandler, {"service": service}),
        (r"/set", SetHandler, {"service": service}),
    ]
