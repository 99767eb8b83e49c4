"""A fake book editor publishing listings on 127.0.0.1, in a thread, told how to misbehave.

`behaviour` is one of: good (the listing, 304 when the validators match),
500, hang (never answers), truncated (half the promised body, then close),
oversized (a body bigger than any test's `max_listing_bytes`). `body`
overrides the listing's bytes (garbage, wrong shape).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAST_MODIFIED = "Sat, 28 Nov 2026 10:00:00 GMT"


class FakeEditor:
    def __init__(self) -> None:
        self.listings: dict[str, Any] = {}
        self.body: bytes | None = None
        self.behaviour = "good"
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._release = threading.Event()  # lets hanging requests go at shutdown
        editor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                editor.requests.append((self.path, dict(self.headers)))
                editor.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/list-books-by-id/{{scheme}}.json"

    def count(self, scheme: str) -> int:
        return sum(path.endswith(f"/{scheme}.json") for path, _ in self.requests)

    def payload(self, scheme: str) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.listings.get(scheme, {})).encode()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        scheme = request.path.rsplit("/", 1)[-1].removesuffix(".json")
        if self.behaviour == "hang":
            self._release.wait(60)
            return
        if self.behaviour == "500":
            self._send(request, 500, b"editor broken", {})
            return
        body = self.payload(scheme)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.behaviour == "good" and request.headers.get("If-None-Match") == etag:
            self._send(request, 304, b"", {"ETag": etag})
            return
        if self.behaviour == "oversized":
            body = b'{"x": {"edit": "http://e.example/' + b"a" * 100_000 + b'"}}'
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Content-Type": "application/json"}
        if self.behaviour == "truncated":
            request.send_response(200)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body[: len(body) // 2])
            request.wfile.flush()
            request.close_connection = True
            return
        self._send(request, 200, body, headers)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str]
    ) -> None:
        request.send_response(code)
        for name, value in headers.items():
            request.send_header(name, value)
        if code != 304:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fake_editor() -> Iterator[FakeEditor]:
    editor = FakeEditor()
    editor.start()
    try:
        yield editor
    finally:
        editor.close()


def wait_for(condition: Any, timeout: float = 20) -> None:
    """Poll `condition()` until true (for live servers whose state is only seen from outside)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
