"""BaseHandler's own `clear` must leave a handler as Tornado's `clear` does."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any
from unittest.mock import Mock

import tornado.web
from tornado.httputil import HTTPServerRequest, RequestStartLine

from iiif_server.handlers.base import BaseHandler


def state(handler: tornado.web.RequestHandler) -> dict[str, Any]:
    headers = dict(handler._headers.get_all())
    headers.pop("Date")
    return {"attributes": set(vars(handler)), "headers": headers, "status": handler._status_code,
            "reason": handler._reason, "buffer": handler._write_buffer}  # fmt: skip


def test_clear_leaves_the_state_tornados_clear_does_with_a_current_date() -> None:
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.0"), connection=Mock()
    )
    handler = BaseHandler(tornado.web.Application(), request)
    handler.set_status(404)
    handler.set_header("X-Gone", "soon")
    handler.write("body")
    handler.clear()
    ours, our_date = state(handler), handler._headers["Date"]
    tornado.web.RequestHandler.clear(handler)
    assert ours == state(handler)
    assert ours["headers"]["Access-Control-Allow-Origin"] == "*"
    their_date = handler._headers["Date"]
    seconds = (parsedate_to_datetime(their_date) - parsedate_to_datetime(our_date)).total_seconds()
    assert 0 <= seconds <= 1
