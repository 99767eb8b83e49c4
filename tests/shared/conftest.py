"""Fixtures of the shared-tier tests: a bucket prefix of each test's own, a private Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.covers.conftest import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]


@pytest.fixture
def prefix() -> str:
    return f"shared-{uuid.uuid4().hex[:12]}/"
