"""A scriptable upstream HTTP server on 127.0.0.1 for the web source tests.

Written on raw asyncio streams rather than Tornado so that a test can make it misbehave
exactly: lie about Content-Length, stop half-way, drip bytes, never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image


def jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Request:
    path: str  # with its query, exactly as sent
    headers: dict[str, str]  # names lower-cased


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/jpeg"})
    send_length: bool = True  # False: the body ends when the connection closes
    declared_length: int | None = None  # a Content-Length other than the body's
    delay: float = 0.0  # before the status line
    drip: float | None = None  # seconds between 1 KiB pieces of the body
    gate: asyncio.Event | None = None  # answer only once this is set
    repeat_body: int = 1  # the body is sent this many times (big bodies made cheaply)


Route = Reply | Callable[[Request], Reply]


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, headers={"Location": location})


class Upstream:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.aborted = 0  # replies the client cut off before their end
        self.arrived = asyncio.Event()  # set at every request
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            request = Request(path, headers)
            self.requests.append(request)
            self.arrived.set()
            route = self.routes.get(path, Reply(404, b"not here", {"Content-Type": "text/plain"}))
            reply = route(request) if callable(route) else route
            await self._reply(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.aborted += 1
        except asyncio.CancelledError:
            pass  # closed by `close()`: end quietly (asyncio logs a cancelled handler)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.gate is not None:
            await reply.gate.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        length = len(reply.body) * reply.repeat_body
        headers = dict(reply.headers)
        if reply.declared_length is not None:
            headers["Content-Length"] = str(reply.declared_length)
        elif reply.send_length:
            headers["Content-Length"] = str(length)
        head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write((head + "Connection: close\r\n\r\n").encode("latin-1"))
        for _ in range(reply.repeat_body):
            if reply.drip is None:
                writer.write(reply.body)
                await writer.drain()
                continue
            for start in range(0, len(reply.body), 1024):
                writer.write(reply.body[start : start + 1024])
                await writer.drain()
                await asyncio.sleep(reply.drip)


async def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Poll `condition` on the running loop until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
