"""Logging: readable lines (`log_format: text`) or one JSON object a line (`json`).

Both the error log (every logger) and the access log (one record per request,
written by `access_log` from the application's `log_request`) go through the
same formatter; the access records carry their fields (method, path, status,
duration, API) as attributes, so the JSON lines hold them as keys.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from tornado.web import RequestHandler

ACCESS = logging.getLogger("tornado.access")
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Record attributes that are the access log's own fields.
_ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "api", "remote_ip")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, process, message, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for field in _ACCESS_FIELDS:
            if hasattr(record, field):
                document[field] = getattr(record, field)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Set up the root logger once per process (the server, each front, each command).

    Like `logging.basicConfig`, it leaves a root logger that has handlers alone.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])


def api_label(handler: RequestHandler) -> str:
    """A request's API for logs and metrics: its handler class (bounded), never its path."""
    return _class_label(type(handler).__name__)


@functools.cache  # one entry per handler class
def _class_label(class_name: str) -> str:
    name = class_name.removesuffix("Handler") or "other"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def access_log(handler: RequestHandler) -> None:
    """Tornado's access line (level by status), with the request's fields attached."""
    status = handler.get_status()
    log = ACCESS.info if status < 400 else ACCESS.warning if status < 500 else ACCESS.error
    duration_ms = 1000.0 * handler.request.request_time()
    request = handler.request
    fields = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "api": api_label(handler),
        "remote_ip": request.remote_ip,
    }
    log("%d %s %.2fms", status, handler._request_summary(), duration_ms, extra=fields)
