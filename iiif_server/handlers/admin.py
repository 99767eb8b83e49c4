"""`/admin/...`: operations behind the bearer token `admin_token` (purge)."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

import tornado.web

from ..errors import BadRequest
from .base import BaseHandler

if TYPE_CHECKING:
    from ..purge.product import PurgeProduct

# A purge names at most this many identifiers at once; more take more requests.
MAX_IDENTIFIERS = 1000
_MAX_BODY = 2**20


def require_bearer(handler: tornado.web.RequestHandler, token: str) -> None:
    """`Authorization: Bearer <token>`, else 401 (none given) or 403 (a wrong one)."""
    header = handler.request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise tornado.web.HTTPError(401, "a bearer token is required")
    # Constant time: how much of a guess matched must not show in the timing.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise tornado.web.HTTPError(403, "wrong token")


class TokenHandler(BaseHandler):
    """Requires the admin token (see `require_bearer`)."""

    def initialize(self, token: str, **kwargs: Any) -> None:
        self.token = token

    def prepare(self) -> None:
        super().prepare()
        require_bearer(self, self.token)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:  # after send_error cleared the headers
            self.set_header("WWW-Authenticate", 'Bearer realm="iiif-server"')
        super().write_error(status_code, **kwargs)


class PurgeHandler(TokenHandler):
    """POST or DELETE `/admin/purge`: `identifier=` (repeatable), `type=`, or `all=true`.

    The same fields may come as a JSON body: `{"identifiers": [...]}`,
    `{"type": "name"}` or `{"all": true}`.
    """

    def initialize(self, token: str, **kwargs: Any) -> None:
        super().initialize(token)
        self.purger: PurgeProduct = kwargs["purger"]

    async def post(self) -> None:
        identifiers, type_name, everything = self._fields()
        if sum((bool(identifiers), type_name is not None, everything)) != 1:
            raise BadRequest("name identifiers, a type, or all=true (exactly one of them)")
        if len(identifiers) > MAX_IDENTIFIERS:
            raise BadRequest(f"at most {MAX_IDENTIFIERS} identifiers a request")
        result = await self.purger.purge(identifiers, type_name, everything)
        self.finish(result)

    delete = post

    def _fields(self) -> tuple[list[str], str | None, bool]:
        body = self.request.body
        if body.strip():
            if len(body) > _MAX_BODY:
                raise BadRequest("the request body is too large")
            try:
                raw = json.loads(body)
            except ValueError:
                raise BadRequest("the body must be JSON") from None
            if not isinstance(raw, dict) or set(raw) - {"identifiers", "type", "all"}:
                raise BadRequest(
                    'the body must be {"identifiers": [...]}, {"type": t} or {"all": true}'
                )
            identifiers, type_name, everything = (
                raw.get("identifiers", []),
                raw.get("type"),
                raw.get("all", False),
            )
            if not isinstance(identifiers, list) or not all(
                isinstance(i, str) for i in identifiers
            ):
                raise BadRequest("identifiers must be a list of strings")
            if type_name is not None and not isinstance(type_name, str):
                raise BadRequest("type must be a string")
            if not isinstance(everything, bool):
                raise BadRequest("all must be true or false")
            return identifiers, type_name, everything
        everything_text = self.get_query_argument("all", "false").lower()
        if everything_text not in ("true", "1", "yes", "false", "0", "no"):
            raise BadRequest("all must be true or false")
        return (
            self.get_query_arguments("identifier"),
            self.get_query_argument("type", None),
            everything_text in ("true", "1", "yes"),
        )
