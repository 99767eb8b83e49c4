"""Content types from file extensions, as book readers expect them."""

from __future__ import annotations

from .paths import extension

_TYPES = {
    "epub": "application/epub+zip",
    "zip": "application/zip",
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "html": "text/html",
    "htm": "text/html",
    "xhtml": "application/xhtml+xml",
    "xml": "application/xml",
    "opf": "application/oebps-package+xml",
    "ncx": "application/x-dtbncx+xml",
    "css": "text/css",
    "js": "text/javascript",
    "json": "application/json",
    "txt": "text/plain",
    "smil": "application/smil+xml",
    "otf": "font/otf",
    "ttf": "font/ttf",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
}
# Encoder names (see imaging.encode) to their types.
FORMAT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


def content_type(name: str) -> str:
    """The type of a file called `name`; text types carry `charset=utf-8`."""
    media = _TYPES.get(extension(name), "application/octet-stream")
    textual = media.startswith("text/") or media.endswith(("+xml", "/xml", "/json"))
    return f"{media}; charset=utf-8" if textual else media
