"""What every handler shares: CORS, plain-text errors, Retry-After on 503."""

from __future__ import annotations

import logging
from asyncio import Future
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import tornado.web

from ..errors import ServerError, Unavailable

logger = logging.getLogger(__name__)


class BaseHandler(tornado.web.RequestHandler):
    _counted = False

    def prepare(self) -> None:
        # Counted so that a stopping server can wait for requests in flight.
        started = getattr(self.application, "request_started", None)
        if started is not None:
            started()
            self._counted = True

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        flushed = super().finish(chunk)
        # Uncounted once the bytes are on the wire, not when finish() returns.
        flushed.add_done_callback(lambda _: self._uncount())
        return flushed

    def on_connection_close(self) -> None:
        self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.application.request_finished()  # type: ignore[attr-defined]

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Expose-Headers", "Link, ETag, Retry-After")

    def not_modified(self, etag: str, modified: datetime) -> bool:
        """Conditional requests are decided here, before any work on the body."""
        if_none_match = self.request.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or etag in tags
        since = self.request.headers.get("If-Modified-Since")
        if since:
            try:
                return modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False

    def options(self, *args: str) -> None:
        """CORS preflight; allows `Authorization` for viewers that send tokens."""
        self.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        requested = self.request.headers.get("Access-Control-Request-Headers")
        self.set_header(
            "Access-Control-Allow-Headers", requested or "Authorization, Accept, Content-Type"
        )
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(204)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Our own errors are answers, not server faults: no traceback in the log.
        if isinstance(value, ServerError):
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        # Our errors carry their own status; Tornado would make them all 500s.
        if isinstance(e, ServerError):
            if e.status >= 500:
                logger.warning("%s %s: %s", self.request.method, self.request.uri, e.message)
            if not self._finished:
                self.send_error(e.status, error=e)
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("error")
        message = error.message if isinstance(error, ServerError) else None
        if isinstance(error, Unavailable):
            self.set_header("Retry-After", str(error.retry_after))
        if message is None:
            exc_info = kwargs.get("exc_info")
            error = exc_info[1] if exc_info else None
            if isinstance(error, tornado.web.HTTPError) and error.log_message:
                message = error.log_message % error.args if error.args else error.log_message
            else:
                message = self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f"{status_code} {self._reason}: {message}\n")


class NotFoundHandler(BaseHandler):
    """Any path no route matches."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, "no such resource")
