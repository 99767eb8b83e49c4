"""Concurrent downloads of a large file stream: the server's memory stays flat (live server)."""

from __future__ import annotations

import http.client
import re
import socket
import time
from pathlib import Path

from tests.live import live_server

FILE_BYTES = 500 * 2**20
CLIENTS = 30
# What 30 streams may add to the front process: a chunk or two each, and Python's slack.
ALLOWED_GROWTH = 40 * 2**20


def rss(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1)) * 1024


def test_thirty_slow_downloads_of_a_500_mb_file_keep_memory_flat(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    with (books / "huge.epub").open("wb") as file:
        file.truncate(FILE_BYTES)  # sparse: no disk used, and reads cost little
    env = {"IIIF_SERVER_RESOURCES": f"{{root: {books}}}"}
    with live_server(tmp_path, env) as server:
        warm_up = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        warm_up.request("GET", "/resources/huge.epub", headers={"Range": "bytes=0-99"})
        assert warm_up.getresponse().read() == bytes(100)
        warm_up.close()
        before = rss(server.process.pid)
        clients = []
        for _ in range(CLIENTS):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            client.sendall(b"GET /resources/huge.epub HTTP/1.1\r\nHost: books\r\n\r\n")
            clients.append(client)
        peak, received = before, [0] * CLIENTS
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for index, client in enumerate(clients):
                received[index] += len(client.recv(64 * 1024))  # slow readers: a bit each turn
            peak = max(peak, rss(server.process.pid))
            time.sleep(0.01)
        for client in clients:
            client.close()
    assert all(count > 1_000_000 for count in received)  # every stream was moving
    assert peak - before < ALLOWED_GROWTH, f"grew by {(peak - before) / 2**20:.0f} MB"
