"""The batched access log writes what logging would have written, later and together."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from iiif_server.access_log import AccessLog
from iiif_server.logs import TEXT_FORMAT


def request_handler(status: int, uri: str = "/cover?id=1") -> SimpleNamespace:
    request = SimpleNamespace(
        method="GET",
        uri=uri,
        path=uri.split("?")[0],
        remote_ip="127.0.0.1",
        request_time=lambda: 0.00123,
    )
    return SimpleNamespace(
        get_status=lambda: status,
        request=request,
        _request_summary=lambda: f"GET {uri} (127.0.0.1)",
    )


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """`tornado.access` logging to a plain stream in the server's format, and nowhere else."""
    logger = logging.getLogger("tornado.access")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    saved = logger.handlers, logger.propagate, logger.level
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the level cache
    yield output
    logger.handlers, logger.propagate = saved[:2]
    logger.setLevel(saved[2])


def test_lines_are_kept_then_written_together_in_the_logging_format(stream: io.StringIO) -> None:
    async def scenario() -> None:
        log = AccessLog()
        log(request_handler(200))
        log(request_handler(304, "/iiif/3/a/info.json"))
        assert stream.getvalue() == ""  # not yet: the lines wait for one write
        await asyncio.sleep(0.3)

    asyncio.run(scenario())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ INFO tornado.access: "
    assert re.fullmatch(stamp + r"200 GET /cover\?id=1 \(127\.0\.0\.1\) 1\.23ms", lines[0])
    assert re.fullmatch(stamp + r"304 GET /iiif/3/a/info\.json \(127\.0\.0\.1\) 1\.23ms", lines[1])


def test_errors_are_logged_at_once_with_their_level(stream: io.StringIO) -> None:
    async def scenario() -> None:
        log = AccessLog()
        log(request_handler(404))
        log(request_handler(503))
        assert " WARNING tornado.access: 404 GET" in stream.getvalue()
        assert " ERROR tornado.access: 503 GET" in stream.getvalue()

    asyncio.run(scenario())


def test_flush_writes_what_is_kept(stream: io.StringIO) -> None:
    async def scenario() -> None:
        log = AccessLog()
        log(request_handler(200))
        log.flush()
        assert stream.getvalue().count("\n") == 1

    asyncio.run(scenario())


def test_other_handlers_still_get_one_record_a_request(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        AccessLog()(request_handler(200))

    with caplog.at_level(logging.INFO, logger="tornado.access"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["200 GET /cover?id=1 (127.0.0.1) 1.23ms"]


def test_nothing_below_the_configured_level(stream: io.StringIO) -> None:
    logging.getLogger("tornado.access").setLevel(logging.WARNING)

    async def scenario() -> None:
        log = AccessLog()
        log(request_handler(200))
        log.flush()

    asyncio.run(scenario())
    assert stream.getvalue() == ""
