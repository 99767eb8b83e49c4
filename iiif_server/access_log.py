"""The access log, written in batches: one write for many requests, not one each.

Tornado logs each request through `logging`: a record, a formatter, and a
write with a flush, which is about a tenth of the front's work for a cached
`/cover` answer or tile. Here the line of a successful request (status below
400) is formatted once, as the logging configuration would format it, and
kept; the lines are written together a moment later (at most `_DELAY`
seconds, or `_MAX_LINES` lines). Warnings and errors (4xx, 5xx), and handlers
other than a plain stream (a file, a test's capture), still get one record
each, at once (so a log line of an error can come before the line of a
request that ended just before it; each line has its own time).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from .logs import TEXT_FORMAT, access_log

_DELAY = 0.2  # seconds a line may wait
_MAX_LINES = 256
_logger = logging.getLogger("tornado.access")


class AccessLog:
    """Tornado's `log_function` for one application (one event loop)."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""
        self._prefix = f" {os.getpid()} INFO tornado.access: "

    def __call__(self, handler: Any) -> None:
        status = handler.get_status()
        request = handler.request
        message = "%d %s %s (%s) %.2fms" % (  # noqa: UP031 -- Tornado's own format
            status,
            request.method,
            request.uri,
            request.remote_ip,
            1000.0 * request.request_time(),
        )
        if status >= 400 or not _logger.isEnabledFor(logging.INFO):
            access_log(handler)
            return
        streams, others = _handlers()
        if others or not streams:
            access_log(handler)  # one record, with the request's fields (JSON lines)
            return
        self._lines.append(self._timestamp() + self._prefix + message + "\n")
        if len(self._lines) >= _MAX_LINES:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(_DELAY, self.flush)

    def flush(self) -> None:
        """Write the kept lines now (also at shutdown)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        for handler in _handlers()[0]:
            handler.acquire()
            try:
                handler.stream.write(text)
                handler.flush()
            except Exception:  # as logging does: a broken log never breaks a request
                handler.handleError(logging.makeLogRecord({"msg": text}))
            finally:
                handler.release()

    def _timestamp(self) -> str:
        """`asctime` as logging's default formatter writes it, the seconds made once a second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((now - second) * 1000):03d}"


def _handlers() -> tuple[list[logging.StreamHandler[Any]], list[logging.Handler]]:
    """The handlers an INFO record of `tornado.access` reaches: plain streams, and the rest.

    A plain stream with the text format of `logs.configure_logging` is written
    directly; anything else (files, captures, JSON lines) gets records.
    """
    streams: list[logging.StreamHandler[Any]] = []
    others: list[logging.Handler] = []
    logger: logging.Logger | None = _logger
    while logger is not None:
        for handler in logger.handlers:
            if handler.level > logging.INFO:
                continue
            if type(handler) is logging.StreamHandler and _is_ours(handler.formatter):
                streams.append(handler)
            else:
                others.append(handler)
        logger = logger.parent if logger.propagate else None
    return streams, others


def _is_ours(formatter: logging.Formatter | None) -> bool:
    return (
        type(formatter) is logging.Formatter
        and formatter._fmt == TEXT_FORMAT
        and formatter.datefmt is None
    )
