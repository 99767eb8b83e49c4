"""Google Books, Open Library and Amazon on 127.0.0.1, answering with their real body shapes.

A test says which books have covers (`gb`, `ol`, `aws`), can make a provider
fail (`"fail"`: HTTP 503, `"garbage"`: an HTML page, `"hang"`: no answer until
the fake stops) and reads `requests` to see what was asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tornado.web
from PIL import Image
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from iiif_server.covers.config import CoversSettings

# The 1x1 GIF Amazon answers for ISBNs it has no cover of: 43 bytes.
AMAZON_PLACEHOLDER = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
assert len(AMAZON_PLACEHOLDER) == 43


def cover_jpeg(
    size: tuple[int, int] = (128, 192), color: tuple[int, int, int] = (20, 90, 160)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class FakeProviders:
    def __init__(self) -> None:
        self.gb: dict[str, str] = {}  # bibkey -> Google volume id
        self.gb_without_thumbnail: set[str] = set()
        self.ol: dict[str, int] = {}  # ISBN -> Open Library cover id
        self.aws: set[str] = set()  # ISBN-10s Amazon has a cover of
        self.mode = {"gb": "ok", "ol": "ok", "aws": "ok"}
        self.requests: list[tuple[str, str]] = []  # (provider or "image", path with query)
        self.image = cover_jpeg()
        self.release = asyncio.Event()  # hanging answers end when this is set
        self.port = 0
        self._server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gb_cover(self, volume: str) -> str:
        """The cover URL the server answers for a Google volume (after Coce's rewrite)."""
        return f"{self.url}/gb/content?id={volume}&printsec=frontcover&img=1&zoom=1&source=gbs_api"

    def ol_cover(self, cover: int, letter: str = "M") -> str:
        return f"{self.url}/ol/b/id/{cover}-{letter}.jpg"

    def asked(self, provider: str) -> list[str]:
        return [path for name, path in self.requests if name == provider]

    def settings(self, **overrides: Any) -> CoversSettings:
        """Covers settings with every provider pointed here."""
        base = CoversSettings()
        values: dict[str, Any] = {
            "gb": dataclasses.replace(base.gb, base_url=f"{self.url}/gb/books"),
            "ol": dataclasses.replace(base.ol, base_url=f"{self.url}/ol/api/books"),
            "aws": dataclasses.replace(base.aws, base_url=f"{self.url}/aws/images/P"),
            "timeout": 2000,
        }
        values.update(overrides)
        return dataclasses.replace(base, **values)

    async def start(self) -> None:
        app = tornado.web.Application(
            [
                (r"/gb/books", _GoogleBooks, {"fake": self}),
                (r"/gb/content", _Image, {"fake": self}),
                (r"/ol/api/books", _OpenLibrary, {"fake": self}),
                (r"/ol/b/id/.*", _Image, {"fake": self}),
                (r"/aws/images/P/(.*)", _Amazon, {"fake": self}),
            ],
            log_function=lambda handler: None,
        )
        sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)

    async def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()


class _Fake(tornado.web.RequestHandler):
    provider = ""

    def initialize(self, fake: FakeProviders) -> None:
        self.fake = fake

    async def misbehave(self) -> bool:
        """True when the provider's mode answered instead of it."""
        self.fake.requests.append((self.provider, self.request.uri or ""))
        mode = self.fake.mode[self.provider]
        if mode == "hang":
            await self.fake.release.wait()
        if mode in ("fail", "hang"):
            self.set_status(503)
            self.finish("Service Unavailable")
            return True
        if mode == "garbage":
            self.set_header("Content-Type", "text/html")
            self.finish("<html><body>Our systems have detected unusual traffic</body></html>")
            return True
        return False

    def bibkeys(self) -> list[str]:
        return self.get_argument("bibkeys").split(",")


class _GoogleBooks(_Fake):
    provider = "gb"

    async def get(self) -> None:
        if await self.misbehave():
            return
        books: dict[str, Any] = {}
        for key in self.bibkeys():
            volume = self.fake.gb.get(key)
            if volume is None and key not in self.fake.gb_without_thumbnail:
                continue  # Google leaves out what it does not know
            book: dict[str, Any] = {
                "bib_key": key,
                "info_url": f"https://books.google.com/books?id={volume}&source=gbs_ViewAPI",
                "preview_url": f"https://books.google.com/books?id={volume}&printsec=frontcover&source=gbs_ViewAPI",
                "preview": "partial",
                "embeddable": True,
                "can_download_pdf": False,
            }
            if volume is not None:
                book["thumbnail_url"] = (
                    f"{self.fake.url}/gb/content?id={volume}&printsec=frontcover"
                    "&img=1&zoom=5&edge=curl&source=gbs_api"
                )
            books[key] = book
        # Google escapes `&` as \u0026 inside its strings.
        text = json.dumps(books).replace("&", "\\u0026")
        self.set_header("Content-Type", "text/javascript; charset=ISO-8859-1")
        self.finish(f"_GBSBookInfo = {text};")


class _OpenLibrary(_Fake):
    provider = "ol"

    async def get(self) -> None:
        if await self.misbehave():
            return
        books: dict[str, Any] = {}
        for bibkey in self.bibkeys():
            isbn = bibkey.removeprefix("ISBN:")
            cover = self.fake.ol.get(isbn)
            if cover is None:
                continue
            books[bibkey] = {
                "url": f"https://openlibrary.org/books/OL{cover}M/a-book",
                "key": f"/books/OL{cover}M",
                "title": "A Book",
                "identifiers": {"isbn_13": [isbn]},
                "cover": {
                    size: f"{self.fake.url}/ol/b/id/{cover}-{letter}.jpg"
                    for size, letter in (("small", "S"), ("medium", "M"), ("large", "L"))
                },
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(books))


class _Amazon(_Fake):
    provider = "aws"

    async def head(self, name: str) -> None:
        if await self.misbehave():
            return
        isbn10 = name.split(".", 1)[0]
        size = len(self.fake.image) if isbn10 in self.fake.aws else len(AMAZON_PLACEHOLDER)
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Content-Length", str(size))
        self.finish()

    async def get(self, name: str) -> None:
        isbn10 = name.split(".", 1)[0]
        self.set_header("Content-Type", "image/jpeg")
        self.finish(self.fake.image if isbn10 in self.fake.aws else AMAZON_PLACEHOLDER)


class _Image(tornado.web.RequestHandler):
    def initialize(self, fake: FakeProviders) -> None:
        self.fake = fake

    def get(self) -> None:
        self.fake.requests.append(("image", self.request.uri or ""))
        self.set_header("Content-Type", "image/jpeg")
        self.finish(self.fake.image)


@contextmanager
def fake_in_thread() -> Iterator[FakeProviders]:
    """The fake on a loop of its own, for tests that block (a CLI run, a server subprocess)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-providers", daemon=True)
    thread.start()

    async def create() -> FakeProviders:
        fake = FakeProviders()
        await fake.start()
        return fake

    fake = asyncio.run_coroutine_threadsafe(create(), loop).result(timeout=10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def config_yaml(fake: FakeProviders, **extra: Any) -> str:
    """A `covers:` section pointing every provider at the fake."""
    covers = {
        "gb": {"base_url": f"{fake.url}/gb/books"},
        "ol": {"base_url": f"{fake.url}/ol/api/books"},
        "aws": {"base_url": f"{fake.url}/aws/images/P"},
        "timeout": 2000,
        **extra,
    }
    return json.dumps({"covers": covers})  # JSON is YAML
