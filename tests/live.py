"""A real `python -m iiif_server serve` in a child process, on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


def wait_until_up(server: LiveServer, deadline: float = 60) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()}")
        try:
            if server.get("/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up:\n{server.log.read_text()}")


@contextmanager
def live_server(
    workdir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[LiveServer]:
    """Start the server in `workdir` (its relative default paths land there), stop it after."""
    port = free_port()
    log = workdir / f"server-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_SERVER_")}
    environment.update({"IIIF_SERVER_HTTP_PORT": str(port), "PYTHONPATH": str(REPO)})
    environment["IIIF_SERVER_PROCESSES"] = "1"  # not one per core: a test that wants more says so
    environment.update(env or {})
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "iiif_server", "serve", *args],
            cwd=workdir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, port, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        if process.poll() is None:
            stop(process, timeout=30)


def stop(
    process: subprocess.Popen[bytes], signum: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Ask `process` to stop with `signum`; SIGKILL it if it is still there after `timeout`."""
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_fronts(server: LiveServer, count: int, deadline: float = 60) -> set[int]:
    """The pids of `count` front processes (`processes` > 1), once each has answered /health.

    The server is up when one front answers; until all of them listen, the kernel
    gives every connection to those that do.
    """
    answering: set[int] = set()
    start = time.monotonic()
    while len(answering) < count and time.monotonic() - start < deadline:
        status, _, body = server.get("/health")
        if status == 200:
            answering.add(json.loads(body)["process"])
    if len(answering) < count:
        raise RuntimeError(f"only {len(answering)} of {count} front processes answered")
    return answering
