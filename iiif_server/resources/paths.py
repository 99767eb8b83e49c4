"""Request paths: split into matrix parameters, file and archive entry, and resolved safely.

`split` is pure: it collapses repeated slashes and refuses what may never be
served (`..`, `.`, NUL, `.key` anywhere). `locate` then finds the file under
the root, following symlinks only as long as they stay inside it.

The archive rule: the first segment ending in `.epub` or `.zip` (any case,
optionally followed by `!`) that is not the last segment is the archive; the
segments after it are the path inside.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import BadRequest, NotFound

PARAMS_PREFIX = "params;"
ARCHIVE_SUFFIXES = (".epub", ".zip")
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"})
# A second extension that transcodes, and the encoder it means.
OUTPUT_FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp"}


@dataclass(frozen=True)
class RequestPath:
    """A request path after the mount, cleaned. `inner` is set for a file inside an archive."""

    params: str | None  # the text after `params;`, or None
    segments: tuple[str, ...]  # the file on disk, below the root
    inner: tuple[str, ...] | None = None
    bang: bool = False  # the client wrote `book.epub!/...`

    @property
    def text(self) -> str:
        """The path as served (no parameters), repeated slashes collapsed."""
        path = "/".join(self.segments)
        if self.inner is not None:
            path += ("!/" if self.bang else "/") + "/".join(self.inner)
        return path

    @property
    def name(self) -> str:
        """The last segment: the file's name, or the entry's inside an archive."""
        return (self.inner or self.segments)[-1]


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def is_image(name: str) -> bool:
    return extension(name) in IMAGE_EXTENSIONS


def transcoded(name: str) -> tuple[str, str] | None:
    """`cover.png.jpg` -> (`cover.png`, "jpg"): the source name and the output format."""
    source, dot, ext = name.rpartition(".")
    if not dot or ext.lower() not in OUTPUT_FORMATS or not is_image(source):
        return None
    return source, OUTPUT_FORMATS[ext.lower()]


def split(raw: str) -> RequestPath:
    """Clean the decoded path after the mount; NotFound or BadRequest for what is refused."""
    if "\0" in raw:
        raise BadRequest("the path contains a NUL byte")
    segments = [segment for segment in raw.split("/") if segment]
    params = None
    if segments and segments[0].startswith(PARAMS_PREFIX):
        params = segments.pop(0)[len(PARAMS_PREFIX) :]
    for segment in segments:
        if segment in (".", "..") or segment.lower().endswith(".key"):
            raise NotFound("no such file")
    if not segments:
        raise NotFound("no such file")
    for index, segment in enumerate(segments[:-1]):
        bang = segment.endswith("!")
        name = segment[:-1] if bang else segment
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            inner = tuple(segments[index + 1 :])
            return RequestPath(params, (*segments[:index], name), inner, bang)
    return RequestPath(params, tuple(segments))


@dataclass(frozen=True)
class Located:
    """A regular file under the root, with the identity that changes when it does."""

    path: str  # real path, symlinks resolved
    size: int
    mtime_ns: int

    @property
    def identity(self) -> str:
        return f"{self.path}:{self.size}:{self.mtime_ns}"


def locate(root: str, segments: tuple[str, ...]) -> Located:
    """The regular file `root/segments...`; NotFound when absent or outside `root`.

    `root` must be a real path (symlinks resolved). Symlinks below it are
    followed only while they lead to somewhere inside it.
    """
    real = os.path.realpath(root + "/" + "/".join(segments))
    # A symlink may lead out of the root, or to a `.key` file under another name.
    if not real.startswith(root + "/") or any(
        part.lower().endswith(".key") for part in real[len(root) + 1 :].split("/")
    ):
        raise NotFound("no such file")
    return stat_file(real)


def stat_file(real: str) -> Located:
    """The file at the real path `real` as it is now; NotFound unless a regular file."""
    try:
        info = os.stat(real)  # noqa: PTH116 (hot path: no Path objects)
    except (OSError, ValueError):
        raise NotFound("no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFound("no such file")
    return Located(real, info.st_size, info.st_mtime_ns)
