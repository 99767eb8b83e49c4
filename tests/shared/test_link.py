"""A shared service that fails is left alone for a pause, then asked again."""

from __future__ import annotations

import logging

import pytest

from iiif_server.shared.link import Link


def test_a_failure_pauses_asking_and_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    link = Link("redis", "127.0.0.1:6379", pause=60.0)
    assert link.available()
    with caplog.at_level(logging.WARNING):
        link.failed(ConnectionError("refused"))
        link.failed(ConnectionError("refused"))
    assert not link.available()
    assert [r.getMessage() for r in caplog.records].count(
        "redis at 127.0.0.1:6379 is unavailable (refused); serving without it"
    ) == 1
    health = link.health()
    assert (health["status"], health["errors"], health["last_error"]) == (
        "unavailable",
        2,
        "refused",
    )
    link.succeeded()
    assert link.up
    assert link.available()


def test_after_the_pause_it_is_asked_again() -> None:
    link = Link("store", "http://s3", pause=0.0)
    link.failed("timeout")
    assert link.available()
    assert not link.up
