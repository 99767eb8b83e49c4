"""One sync of one scheme: a conditional GET streamed to a file, then a child process parses it.

A sync either replaces the scheme's index file atomically and records the
new validators, or changes nothing but `last_error`: the last good listing
keeps answering. Its whole time (download and parse) is bounded by
`timeout`, the download by `max_listing_bytes`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .config import LookupSettings
from .state import SchemeStatus, index_path, temporary_path

logger = logging.getLogger(__name__)
USER_AGENT = "iiif-server-lookup"
# The package this code runs from, for the child that parses (it may not be installed).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class SyncFailed(Exception):
    """Why a sync changed nothing; its message goes into the status."""


class _TooLarge(Exception):
    pass


async def sync_scheme(
    settings: LookupSettings, folder: Path, scheme: str, status: SchemeStatus
) -> str:
    """Sync `scheme` into `folder`, updating `status`: `changed`, `unchanged` or `failed`."""
    started = time.monotonic()
    status.last_attempt = time.time()
    target = index_path(folder, scheme)
    listing = temporary_path(folder / f"{quote(scheme, safe='')}.listing")
    try:
        headers = {"User-Agent": USER_AGENT}
        if target.exists():
            if status.etag:
                headers["If-None-Match"] = status.etag
            if status.last_modified:
                headers["If-Modified-Since"] = status.last_modified
        code, etag, modified = await _download(settings, scheme, listing, headers)
        if code == 304 and target.exists():
            outcome = "unchanged"
        else:
            remaining = settings.timeout - (time.monotonic() - started)
            counts = await _build(listing, target, remaining)
            status.ids = counts["ids"]
            status.urls = counts["urls"]
            status.dropped_urls = counts["dropped_urls"]
            status.dropped_ids = counts["dropped_ids"]
            status.etag, status.last_modified = etag, modified
            status.last_change = status.last_attempt
            outcome = "changed"
    except (SyncFailed, OSError) as error:  # OSError: a file of ours could not be written
        status.last_error = str(error)
        logger.warning("lookup: sync of %s failed: %s", scheme, error)
        return "failed"
    finally:
        listing.unlink(missing_ok=True)
        status.last_duration = round(time.monotonic() - started, 3)
    status.last_success = status.last_attempt
    status.last_error = None
    logger.info("lookup: %s %s, %d ids (%.1f s)", scheme, outcome, status.ids, status.last_duration)
    return outcome


async def _download(
    settings: LookupSettings, scheme: str, destination: Path, headers: dict[str, str]
) -> tuple[int, str | None, str | None]:
    """Stream the listing into `destination`: (status code, ETag, Last-Modified)."""
    local = settings.local_file(scheme)
    if local is not None:
        return await asyncio.to_thread(
            _copy_local, local, destination, settings.max_listing_bytes, headers
        )
    limit = settings.max_listing_bytes
    received = 0
    # Tornado's own body limit would cut without saying why: `write` enforces ours.
    client = AsyncHTTPClient(force_instance=True, max_body_size=2**62)
    with destination.open("wb") as file:

        def write(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)
            if received > limit:
                raise _TooLarge()
            file.write(chunk)

        request = HTTPRequest(
            settings.url(scheme),
            headers=headers,
            connect_timeout=settings.timeout,
            request_timeout=settings.timeout,
            streaming_callback=write,
        )
        try:
            response = await client.fetch(request, raise_error=False)
        except Exception as error:  # refused, timed out, cut short, too large, bad HTTP
            if received > limit:  # raised in `write`, it reaches here as "Connection closed"
                raise SyncFailed(f"the listing exceeds max_listing_bytes ({limit})") from None
            raise SyncFailed(f"download failed: {error}") from None
        finally:
            client.close()
    if response.code not in (200, 304):
        raise SyncFailed(f"the editor answered HTTP {response.code}")
    return response.code, response.headers.get("ETag"), response.headers.get("Last-Modified")


def _copy_local(
    source: Path, destination: Path, limit: int, headers: dict[str, str]
) -> tuple[int, str | None, str | None]:
    """A `file:` listing, with the same size limit and a size-and-mtime validator as its ETag."""
    try:
        with source.open("rb") as file:
            stat = os.fstat(file.fileno())
            validator = f'"{stat.st_size}-{stat.st_mtime_ns}"'
            if headers.get("If-None-Match") == validator:
                return 304, validator, None
            if stat.st_size > limit:
                raise SyncFailed(f"the listing exceeds max_listing_bytes ({limit})")
            with destination.open("wb") as copy:
                shutil.copyfileobj(file, copy, 2**20)
    except OSError as error:
        raise SyncFailed(f"cannot read the listing {source}: {error.strerror}") from None
    return 200, validator, None


async def _build(listing: Path, target: Path, seconds: float) -> dict[str, int]:
    """Run `build.py` in a child process, killed when it outlives `seconds`."""
    if seconds <= 0:
        raise SyncFailed("timed out while downloading")
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, environment.get("PYTHONPATH")) if p
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iiif_server.lookup.build", str(listing), str(target),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment,
    )  # fmt: skip
    try:
        output, errors = await asyncio.wait_for(child.communicate(), seconds)
    except TimeoutError:
        raise SyncFailed("timed out while parsing the listing") from None
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
            temporary_path(target, child.pid).unlink(missing_ok=True)
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        message = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SyncFailed(f"the parser failed: {message[0][:300]}") from None
    if "error" in answer:
        raise SyncFailed(str(answer["error"]))
    counts: dict[str, int] = answer
    return counts
