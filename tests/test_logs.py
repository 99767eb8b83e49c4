"""`log_format: json`: one JSON object a line, access fields as keys, exceptions kept."""

from __future__ import annotations

import json
import logging
import sys

from iiif_server.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "tornado.access", logging.WARNING, __file__, 1, "%d %s", (404, "GET /x"), None
    )
    made.__dict__.update(extra)
    return made


def test_an_access_record_is_one_json_line_with_its_fields() -> None:
    line = JsonFormatter().format(
        record(method="GET", path="/x", status=404, duration_ms=1.25, api="not_found")
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "404 GET /x"
    assert document["level"] == "warning" and document["logger"] == "tornado.access"
    assert (document["status"], document["path"], document["api"]) == (404, "/x", "not_found")
    assert document["duration_ms"] == 1.25
    assert document["time"].endswith("+00:00")


def test_an_error_keeps_its_traceback_inside_the_line() -> None:
    try:
        raise ValueError('bad "thing"\nsecond line')
    except ValueError:
        failed = record()
        failed.exc_info = sys.exc_info()
    document = json.loads(JsonFormatter().format(failed))
    assert "ValueError" in document["exception"]
    assert "method" not in document
