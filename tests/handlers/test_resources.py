"""The resources API over HTTP: files, ePub entries, transforms, ranges, headers, refusals."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tornado.web
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.ioloop import IOLoop

from iiif_server.cache import DerivativeCache
from iiif_server.handlers.base import NotFoundHandler
from iiif_server.handlers.resources import routes
from iiif_server.resources.config import ResourcesSettings
from iiif_server.resources.service import ResourceService
from iiif_server.service import InProcessRunner
from tests.imaging.images import BLUE, GREEN, RED, YELLOW, quadrants

pytestmark = pytest.mark.gen_test(timeout=60)

DATA = bytes(range(256)) * 4  # 1024 bytes
CHAPTER = ("<p>" + "Call me Ishmael. " * 200 + "</p>").encode()
LARGE = os.urandom(600 * 1024)
PLATES = os.urandom(300_000)  # an entry too large to read whole: streamed


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def books(tmp_path: Path) -> Path:
    root = tmp_path / "books"
    (root / "sub").mkdir(parents=True)
    (root / "quad.png").write_bytes(png(quadrants(400, 200)))
    (root / "square.png").write_bytes(png(quadrants(400, 400)))
    (root / "data.bin").write_bytes(DATA)
    (root / "large.bin").write_bytes(LARGE)
    (root / "secret.key").write_bytes(b"key")
    (root / "sub" / "notes.txt").write_text("notes")
    (root / "sub" / "style.css").write_text("p { margin: 0 }")
    (tmp_path / "outside.txt").write_text("outside")
    (root / "out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "alias.txt").symlink_to(root / "secret.key")
    with zipfile.ZipFile(root / "book.epub", "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr("OEBPS/ch1.xhtml", CHAPTER, compress_type=zipfile.ZIP_DEFLATED)
        book.writestr("OEBPS/style.css", "h1 { color: red }", compress_type=zipfile.ZIP_DEFLATED)
        book.writestr("OEBPS/images/quad.png", png(quadrants(400, 200)))
        book.writestr("OEBPS/content.key", b"key")
        book.writestr("OEBPS/big.bin", bytes(500_000), compress_type=zipfile.ZIP_DEFLATED)
        book.writestr("OEBPS/plates.bin", PLATES, compress_type=zipfile.ZIP_DEFLATED)
    return root


@pytest.fixture
def service(io_loop: IOLoop, tmp_path: Path, books: Path) -> Iterator[ResourceService]:
    """The API alone, transforms run in this process: most tests need no worker pool."""
    derivatives = DerivativeCache(tmp_path / "cache", 10**8)
    derivatives.load()
    settings = ResourcesSettings(root=books, max_entry_bytes=400_000)
    running = ResourceService(settings, InProcessRunner(), derivatives, 10**8)
    running.start()
    yield running
    io_loop.run_sync(running.stop)
    io_loop.run_sync(derivatives.flush)
    derivatives.close()


@pytest.fixture
def app(service: ResourceService) -> tornado.web.Application:
    return tornado.web.Application(routes(service), default_handler_class=NotFoundHandler)


@pytest.fixture
def prefix(base_url: str) -> str:
    return base_url + "/resources"


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("follow_redirects", False)
    return await client.fetch(url, raise_error=False, **kwargs)


def pixels(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body)).convert("RGB")


def near(actual: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) <= 24 for a, e in zip(actual, expected, strict=True))


# Whole files and their headers


async def test_a_whole_file_with_its_headers(http_client: AsyncHTTPClient, prefix: str) -> None:
    response = await get(http_client, f"{prefix}//sub///notes.txt")
    assert response.code == 200 and response.body == b"notes"
    headers = response.headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=31536000"
    assert headers["Expires"] and headers["Last-Modified"]
    assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Location"] == "/resources/sub/notes.txt"
    css = await get(http_client, f"{prefix}/sub/style.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    epub = await get(http_client, f"{prefix}/book.epub", method="HEAD")
    assert epub.headers["Content-Type"] == "application/epub+zip"
    assert int(epub.headers["Content-Length"]) > 0 and epub.body == b""


async def test_conditional_requests_give_304(http_client: AsyncHTTPClient, prefix: str) -> None:
    first = await get(http_client, f"{prefix}/data.bin")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified},
                    {"If-None-Match": f'"other", {etag}'}):  # fmt: skip
        again = await get(http_client, f"{prefix}/data.bin", headers=headers)
        assert again.code == 304, headers
        assert again.body == b""
    changed = await get(http_client, f"{prefix}/data.bin", headers={"If-None-Match": '"x"'})
    assert changed.code == 200


# Ranges


async def test_single_open_and_suffix_ranges(http_client: AsyncHTTPClient, prefix: str) -> None:
    cases = (("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
             ("bytes=1020-5000", 1020, 1023))  # fmt: skip
    for header, start, end in cases:
        response = await get(http_client, f"{prefix}/data.bin", headers={"Range": header})
        assert response.code == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/1024"
        assert response.body == DATA[start : end + 1]
        assert response.headers["Content-Type"] == "application/octet-stream"


async def test_unsatisfiable_range_is_416(http_client: AsyncHTTPClient, prefix: str) -> None:
    response = await get(http_client, f"{prefix}/data.bin", headers={"Range": "bytes=1024-"})
    assert response.code == 416
    assert response.headers["Content-Range"] == "bytes */1024"


async def test_malformed_ranges_are_ignored(http_client: AsyncHTTPClient, prefix: str) -> None:
    for header in ("bytes=9-2", "bytes=x-y", "pages=1-2", "bytes=--3"):
        response = await get(http_client, f"{prefix}/data.bin", headers={"Range": header})
        assert response.code == 200, header
        assert response.body == DATA


async def test_several_ranges_are_multipart(http_client: AsyncHTTPClient, prefix: str) -> None:
    response = await get(http_client, f"{prefix}/data.bin", headers={"Range": "bytes=0-3,-4"})
    assert response.code == 206
    kind, _, boundary = response.headers["Content-Type"].partition("; boundary=")
    assert kind == "multipart/byteranges"
    parts = response.body.split(f"--{boundary}".encode())
    assert parts[0] == b"\r\n" and parts[-1] == b"--\r\n"
    assert len(response.body) == int(response.headers["Content-Length"])
    expected = [("0-3", DATA[:4]), ("1020-1023", DATA[-4:])]
    for part, (span, data) in zip(parts[1:-1], expected, strict=True):
        head, _, body = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {span}/1024".encode() in head
        assert b"Content-Type: application/octet-stream" in head
        assert body == data + b"\r\n"


async def test_if_range(http_client: AsyncHTTPClient, prefix: str) -> None:
    first = await get(http_client, f"{prefix}/data.bin")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for validator, code in ((etag, 206), (modified, 206), ('"stale"', 200), ("W/" + etag, 200)):
        headers = {"Range": "bytes=0-0", "If-Range": validator}
        response = await get(http_client, f"{prefix}/data.bin", headers=headers)
        assert response.code == code, validator


async def test_a_broken_download_resumes(
    http_client: AsyncHTTPClient, prefix: str, base_url: str
) -> None:
    """A client that lost the connection after some bytes asks for the rest."""
    port = urlsplit(base_url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /resources/large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    etag = next(line.split(b": ", 1)[1] for line in head.split(b"\r\n") if line.startswith(b"Et"))
    received = await reader.readexactly(200_000)
    writer.close()  # the weak link breaks
    headers = {"Range": f"bytes={len(received)}-", "If-Range": etag.decode()}
    rest = await get(http_client, f"{prefix}/large.bin", headers=headers)
    assert rest.code == 206
    assert received + rest.body == LARGE


# Files inside ePubs


@pytest.mark.parametrize("separator", ["/", "!/"])
async def test_a_file_inside_an_epub(
    http_client: AsyncHTTPClient, prefix: str, separator: str
) -> None:
    url = f"{prefix}/book.epub{separator}OEBPS/ch1.xhtml"
    response = await get(http_client, url)
    assert response.code == 200 and response.body == CHAPTER
    assert response.headers["Content-Type"] == "application/xhtml+xml; charset=utf-8"
    assert response.headers["Content-Location"] == f"/resources/book.epub{separator}OEBPS/ch1.xhtml"
    assert response.headers["Cache-Control"] == "public, max-age=31536000"
    whole = await get(http_client, f"{prefix}/book.epub")
    assert response.headers["Last-Modified"] == whole.headers["Last-Modified"]
    assert response.headers["ETag"] != whole.headers["ETag"]
    ranged = await get(http_client, url, headers={"Range": "bytes=100-199"})
    assert ranged.code == 206 and ranged.body == CHAPTER[100:200]
    css = await get(http_client, f"{prefix}/book.epub/OEBPS/style.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    conditional = await get(http_client, url, headers={"If-None-Match": response.headers["ETag"]})
    assert conditional.code == 304


async def test_missing_and_refused_entries(http_client: AsyncHTTPClient, prefix: str) -> None:
    for inner in ("OEBPS/none.xhtml", "OEBPS", "OEBPS/content.key", "OEBPS/../mimetype"):
        assert (await get(http_client, f"{prefix}/book.epub/{inner}")).code == 404, inner
    big = await get(http_client, f"{prefix}/book.epub/OEBPS/big.bin")
    assert big.code == 403
    assert b"400000" in big.body


async def test_a_large_entry_streams_with_ranges(http_client: AsyncHTTPClient, prefix: str) -> None:
    url = f"{prefix}/book.epub/OEBPS/plates.bin"
    whole = await get(http_client, url)
    assert whole.code == 200 and whole.body == PLATES
    ranged = await get(http_client, url, headers={"Range": "bytes=130000-140000,-10"})
    assert ranged.code == 206
    assert PLATES[130000:140001] in ranged.body and ranged.body.count(PLATES[-10:]) == 1


# Safety


@pytest.mark.parametrize(
    "path",
    ["/secret.key", "/SUB/../secret.key", "/../outside.txt", "/sub/%2e%2e/%2E%2E/outside.txt",
     "/%2e%2e/outside.txt", "//etc/passwd", "/out.txt", "/alias.txt", "/sub", "/"],
)  # fmt: skip
async def test_nothing_outside_the_root_and_no_key_files(
    http_client: AsyncHTTPClient, prefix: str, path: str
) -> None:
    response = await get(http_client, prefix + path)
    assert response.code == 404
    assert b"outside" not in response.body and response.body != b"key"


async def test_nul_is_refused(http_client: AsyncHTTPClient, prefix: str) -> None:
    response = await get(http_client, f"{prefix}/data.bin%00.png")
    assert response.code == 400


# Transforms


async def transform(client: AsyncHTTPClient, prefix: str, params: str, path: str) -> HTTPResponse:
    response = await get(client, f"{prefix}/params;v=0;{params}/{path}")
    assert response.code == 200, response.body
    return response


async def test_modes(http_client: AsyncHTTPClient, prefix: str) -> None:
    cases = {
        "img:w=100;img:h=100": (100, 50),  # scale! (the default) fits the box
        "img:w=1000;img:h=1000;img:m=scale": (400, 200),  # scale never enlarges
        "img:w=800;img:h=800;img:m=scale!": (800, 400),
        "img:w=100;img:h=100;img:m=crop": (100, 100),
        "img:w=100;img:h=100;img:m=stretch": (100, 100),
        "img:w=200.0": (200, 100),  # one side: the other by the aspect ratio
        "img:h=50;img:m=crop": (100, 50),
    }
    for params, size in cases.items():
        image = pixels((await transform(http_client, prefix, params, "quad.png")).body)
        assert image.size == size, params
    stretched = pixels(
        (await transform(http_client, prefix, "img:w=100;img:h=100;img:m=stretch", "quad.png")).body
    )
    for point, colour in (((20, 20), RED), ((80, 20), GREEN), ((20, 80), BLUE), ((80, 80), YELLOW)):
        assert near(stretched.getpixel(point), colour), point  # type: ignore[arg-type]


GRAVITY_AXES = {"c": ("c", "c"), "n": ("n", "c"), "ne": ("n", "e"), "e": ("c", "e"),
                "se": ("s", "e"), "s": ("s", "c"), "sw": ("s", "w"), "w": ("c", "w"),
                "nw": ("n", "w")}  # fmt: skip


@pytest.mark.parametrize("gravity", list(GRAVITY_AXES))
async def test_crop_gravity(http_client: AsyncHTTPClient, prefix: str, gravity: str) -> None:
    """A wide box shows the vertical choice, a tall one the horizontal, on 400x400 quadrants."""
    vertical, horizontal = GRAVITY_AXES[gravity]
    crop = f"img:m=crop;img:g={gravity.upper()}"
    wide = pixels(
        (await transform(http_client, prefix, f"{crop};img:w=100;img:h=50", "square.png")).body
    )
    top, bottom = {"n": (RED, RED), "s": (BLUE, BLUE), "c": (RED, BLUE)}[vertical]
    assert near(wide.getpixel((10, 5)), top) and near(wide.getpixel((10, 44)), bottom)  # type: ignore[arg-type]
    tall = pixels(
        (await transform(http_client, prefix, f"{crop};img:w=50;img:h=100", "square.png")).body
    )
    left, right = {"w": (RED, RED), "e": (GREEN, GREEN), "c": (RED, GREEN)}[horizontal]
    assert near(tall.getpixel((5, 10)), left) and near(tall.getpixel((44, 10)), right)  # type: ignore[arg-type]


async def test_canonical_content_location_gives_the_same_bytes(
    http_client: AsyncHTTPClient, prefix: str, base_url: str
) -> None:
    first = await transform(
        http_client, prefix, "img:w=140;img:h=100;img:m=crop;img:g=nw;", "quad.png"
    )
    location = first.headers["Content-Location"]
    assert (
        location
        == "/resources/params;img:g=nw;img:h=100;img:m=crop;img:q=85;img:w=140;v=0/quad.png"
    )
    again = await get(http_client, base_url + location)
    assert again.body == first.body and again.headers["Content-Location"] == location
    assert again.headers["ETag"] == first.headers["ETag"]
    # Another request for the same output names the same location.
    same = await transform(
        http_client, prefix, "img:m=crop;img:h=100.0;img:w=140;img:g=NW;img:q=85", "quad.png"
    )
    assert same.headers["Content-Location"] == location
    encoded = await get(
        http_client,
        f"{prefix}/params%3Bv=0%3Bimg:w=140%3Bimg:h=100%3Bimg:m=crop%3Bimg:g=nw/quad.png",
    )
    assert encoded.body == first.body


async def test_transforms_have_ranges_and_304(http_client: AsyncHTTPClient, prefix: str) -> None:
    url = f"{prefix}/params;v=0;img:w=100/quad.png"
    whole = await get(http_client, url)
    ranged = await get(http_client, url, headers={"Range": "bytes=-10"})
    assert ranged.code == 206 and ranged.body == whole.body[-10:]
    assert (
        await get(http_client, url, headers={"If-None-Match": whole.headers["ETag"]})
    ).code == 304


async def test_transcoding(http_client: AsyncHTTPClient, prefix: str) -> None:
    for name, kind, fmt in (
        ("quad.png.jpg", "image/jpeg", "JPEG"),
        ("quad.png.webp", "image/webp", "WEBP"),
    ):
        response = await get(http_client, f"{prefix}/{name}")
        assert response.code == 200 and response.headers["Content-Type"] == kind
        assert Image.open(io.BytesIO(response.body)).format == fmt
        assert response.headers["Content-Location"].endswith(f"img:w=400;v=0/{name}")
    resized = await transform(http_client, prefix, "img:w=40;img:q=50", "quad.png.jpg")
    assert Image.open(io.BytesIO(resized.body)).size == (40, 20)
    assert "img:q=50;" in resized.headers["Content-Location"]


async def test_images_inside_an_epub(http_client: AsyncHTTPClient, prefix: str) -> None:
    response = await transform(
        http_client,
        prefix,
        "img:w=100;img:h=50;img:m=stretch",
        "book.epub!/OEBPS/images/quad.png.jpg",
    )
    image = pixels(response.body)
    assert image.size == (100, 50) and near(image.getpixel((80, 40)), YELLOW)  # type: ignore[arg-type]
    assert response.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("params", "key"),
    [("img:w=10", "v"), ("v=1", "v"), ("v=0;img:w=0", "img:w"), ("v=0;img:h=9999", "img:h"),
     ("v=0;img:m=fill", "img:m"), ("v=0;img:g=middle", "img:g"), ("v=0;img:q=0", "img:q"),
     ("v=0;img:rotate=90", "img:rotate"), ("v=0;img:w=a", "img:w")],
)  # fmt: skip
async def test_every_bad_parameter_is_a_400_naming_it(
    http_client: AsyncHTTPClient, prefix: str, params: str, key: str
) -> None:
    response = await get(http_client, f"{prefix}/params;{params}/quad.png")
    assert response.code == 400
    assert f": {key}:".encode() in response.body


async def test_parameters_are_ignored_for_other_files(
    http_client: AsyncHTTPClient, prefix: str
) -> None:
    response = await get(http_client, f"{prefix}/params;img:w=bad/data.bin")
    assert response.code == 200 and response.body == DATA
    assert response.headers["Content-Location"] == "/resources/data.bin"


async def test_a_changed_file_is_served_anew_at_once(
    http_client: AsyncHTTPClient, prefix: str, books: Path
) -> None:
    first = await get(http_client, f"{prefix}/sub/notes.txt")
    path = books / "sub" / "notes.txt"
    path.write_text("new notes")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    second = await get(http_client, f"{prefix}/sub/notes.txt")
    assert second.body == b"new notes"
    assert second.headers["ETag"] != first.headers["ETag"]
