"""Requests to an S3-compatible store: byte ranges into memory, whole objects to disk,
and the small objects of the shared derivative tier (whole GETs, PUTs, DELETEs, listings).

Signed with SigV4 (sigv4.py) and sent with Tornado's own HTTP client, on the event
loop. Chosen by measurement (bench/s3_clients.py, README): against SeaweedFS on
loopback it was as fast as boto3 in a thread and obstore, faster than aiobotocore,
and it needs no dependency, no thread per request and no foreign runtime in the
front processes; downloads stream to disk like the web sources' (fetch.Exchange).

Every request takes one of the server's download slots (`Fetcher.slot`). Connection
failures and the store's 5xx/429 answers are retried a bounded number of times, with a
short pause; a timeout is not (it already took the time). Status mapping: 404 is
NotFound; a connect timeout or a refused connection is UpstreamError (502); a timeout
after connecting is UpstreamTimeout (504); anything else unexpected is UpstreamError.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote
from xml.etree import ElementTree

from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse

from .. import __version__
from ..errors import NotFound, ServerError, Unavailable, UpstreamError, UpstreamTimeout
from .fetch import Exchange, Fetcher, HopPolicy, Validators
from .s3_config import S3Settings
from .s3_http import StoreClients, timed_out
from .sigv4 import Credentials, object_path, sign

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Retries after the first try, and the pause before each (seconds).
RETRIES = (0.1, 0.3)
_RETRIED_STATUSES = frozenset((429, 500, 502, 503, 504))
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_ERROR_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")
# Keys asked for per listing page (S3's own maximum).
_LIST_PAGE = 1000


class _Retry(Exception):
    """A failure worth another try; carries the error to raise when tries run out."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class ObjectRange:
    """Bytes of an object from `start`, and what the store said about the whole object."""

    start: int
    data: bytes
    size: int
    validators: Validators


def credentials_for(settings: S3Settings, environ: Mapping[str, str]) -> Credentials | None:
    """The type's own keys, else the usual AWS variables, else None (unsigned requests)."""
    if settings.access_key_id and settings.secret_access_key:
        return Credentials(settings.access_key_id, settings.secret_access_key)
    key_id = environ.get("AWS_ACCESS_KEY_ID")
    secret = environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return Credentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None)
    return None


class S3Client:
    """One s3 type's requests to its bucket."""

    def __init__(
        self,
        settings: S3Settings,
        fetcher: Fetcher,
        *,
        environ: Mapping[str, str] | None = None,
        retries: tuple[float, ...] = RETRIES,
        reuse_connections: bool = True,
    ) -> None:
        self.settings = settings
        self._retries = retries
        self._fetcher = fetcher
        self._credentials = credentials_for(settings, os.environ if environ is None else environ)
        self._clients = StoreClients(
            fetcher.limits.max_fetches, fetcher.limits.max_bytes + 2**16, reuse=reuse_connections
        )
        self.bytes_received = 0  # body bytes of every answer, for /health and benchmarks

    def url_for(self, key: str) -> str:
        return self.settings.base_url + object_path(self.settings.bucket, key)

    def close(self) -> None:
        self._clients.close()

    async def read_range(
        self, url: str, start: int, end: int, *, label: str, if_match: str | None = None
    ) -> ObjectRange:
        """Bytes [start, end) of the object (fewer at its end). With `if_match`, an
        object replaced since is Unavailable (503: the caller's view of it is gone)."""
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if if_match:
            headers["If-Match"] = if_match

        async def attempt() -> ObjectRange:
            response = await self._send(url, headers, label)
            if response.code == 206:
                match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
                if match is None:
                    raise UpstreamError(f"{label}: the store's answer has no usable Content-Range")
                size = int(match.group(3))
            elif response.code == 200:  # the whole object: the store ignored the range
                size = len(response.body)
            elif response.code == 416:  # nothing at `start`: an empty object
                return ObjectRange(start, b"", 0, _validators(response))
            else:
                raise self._status_error(response, label, if_match is not None)
            body = response.body[start:end] if response.code == 200 else response.body
            return ObjectRange(start, body, size, _validators(response))

        return await self._retried(attempt, label)

    async def fetch(
        self,
        url: str,
        destination: Path,
        policy: HopPolicy,
        *,
        label: str,
        validators: Validators | None = None,
    ) -> Validators | None:
        """The whole object into `destination` (`RemoteSource`'s downloader); None for a
        304 to `validators`. The store's address is the operator's: `policy` is not
        consulted, and the store does not redirect."""
        del policy
        headers = {}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag

        async def attempt() -> Validators | None:
            exchange = Exchange(
                destination, self._fetcher.limits.max_bytes, label, images_only=False
            )
            try:
                response = await self._send(url, headers, label, exchange)
            finally:
                exchange.close()
            if response.code == 200:
                self.bytes_received += exchange.received
                return _validators(response)
            if response.code == 304 and validators is not None:
                return None
            raise self._status_error(response, label, False)

        return await self._retried(attempt, label)

    async def get_object(self, key: str, *, label: str) -> bytes | None:
        """The whole (small) object, or None when there is none."""

        async def attempt() -> bytes | None:
            response = await self._send(self.url_for(key), {}, label)
            if response.code == 200:
                return response.body
            if response.code == 404:
                return None
            raise self._status_error(response, label, False)

        return await self._retried(attempt, label)

    async def put_object(self, key: str, data: bytes, *, label: str) -> None:
        async def attempt() -> None:
            response = await self._send(
                self.url_for(key),
                {"Content-Type": "application/octet-stream"},
                label,
                method="PUT",
                body=data,
            )
            if response.code != 200:
                raise self._status_error(response, label, False)

        await self._retried(attempt, label)

    async def delete_object(self, key: str, *, label: str) -> None:
        async def attempt() -> None:
            response = await self._send(self.url_for(key), {}, label, method="DELETE")
            if response.code not in (200, 204, 404):
                raise self._status_error(response, label, False)

        await self._retried(attempt, label)

    async def list_keys(self, prefix: str, *, label: str, limit: int) -> list[str]:
        """The keys under `prefix`, at most `limit` of them (in key order)."""
        keys: list[str] = []
        token: str | None = None
        bucket_url = self.settings.base_url + "/" + quote(self.settings.bucket, safe="")
        while len(keys) < limit:
            query = {"list-type": "2", "max-keys": str(_LIST_PAGE), "prefix": prefix}
            if token is not None:
                query["continuation-token"] = token
            # Canonical already: sorted names, values encoded as SigV4 encodes them.
            url = (
                bucket_url
                + "?"
                + "&".join(
                    f"{name}={quote(value, safe='-_.~')}" for name, value in sorted(query.items())
                )
            )

            async def attempt(url: str = url) -> HTTPResponse:
                response = await self._send(url, {}, label)
                if response.code != 200:
                    raise self._status_error(response, label, False)
                return response

            page = await self._retried(attempt, label)
            try:
                root = ElementTree.fromstring(page.body)
            except ElementTree.ParseError:
                raise UpstreamError(f"{label}: the store's listing is not XML") from None
            # `{*}`: with or without S3's XML namespace, as stores differ.
            keys.extend(e.text or "" for e in root.iterfind("{*}Contents/{*}Key"))
            token = root.findtext("{*}NextContinuationToken")
            if root.findtext("{*}IsTruncated") != "true" or not token:
                break
        return keys[:limit]

    async def _retried(self, attempt: Callable[[], Awaitable[T]], label: str) -> T:
        async with self._fetcher.slot(label):
            for pause in (*self._retries, None):
                try:
                    return await attempt()
                except _Retry as retry:
                    if pause is None:
                        raise retry.error from None
                    await asyncio.sleep(pause)
        raise AssertionError("unreachable: the last try raises")

    async def _send(
        self,
        url: str,
        headers: dict[str, str],
        label: str,
        exchange: Exchange | None = None,
        *,
        method: str = "GET",
        body: bytes | None = None,
    ) -> HTTPResponse:
        payload = hashlib.sha256(body or b"").hexdigest()
        request = HTTPRequest(
            url,
            method=method,
            body=body,
            headers=sign(
                method,
                url,
                self.settings.region,
                self._credentials,
                headers,
                payload_sha256=payload,
            ),
            connect_timeout=self.settings.connect_timeout,
            request_timeout=self.settings.timeout,
            follow_redirects=False,
            decompress_response=False,
            user_agent=f"iiif-server/{__version__}",
            header_callback=exchange.on_header_line if exchange else None,
            streaming_callback=exchange.on_chunk if exchange else None,
            prepare_curl_callback=None if exchange else self._clients.limit_body,
        )
        client = self._clients.client(streaming=exchange is not None)
        try:
            response = await client.fetch(request, raise_error=False)
        except Exception as error:
            phase = timed_out(error)
            if phase == "connecting":
                logger.warning("%s: cannot reach the store at %s", label, self.settings.base_url)
                raise UpstreamError(f"{label}: the object store cannot be reached") from None
            if phase == "answering":
                raise UpstreamTimeout(f"{label}: the object store did not answer in time") from None
            if exchange is not None and exchange.failure is not None:
                raise exchange.failure from None
            detail = str(error) if isinstance(error, HTTPClientError | OSError) else ""
            logger.warning("%s: the object store connection failed: %s", label, detail or error)
            raise _Retry(UpstreamError(f"{label}: the object store cannot be reached")) from None
        if response.body and exchange is None:
            self.bytes_received += len(response.body)
        if response.code in _RETRIED_STATUSES:
            raise _Retry(UpstreamError(f"{label}: the object store answered {response.code}"))
        return response

    def _status_error(self, response: HTTPResponse, label: str, conditional: bool) -> ServerError:
        if response.code == 404:
            code = _error_code(response)
            if code == "NoSuchBucket":
                logger.warning("%s: the bucket %r does not exist", label, self.settings.bucket)
            return NotFound(f"no image {label}")
        if response.code == 412 and conditional:
            return Unavailable(f"{label}: the object changed while it was read; try again")
        logger.warning(
            "%s: the object store answered %d %s",
            label,
            response.code,
            _error_code(response) or "",
        )
        return UpstreamError(f"{label}: the object store answered {response.code}")


def _validators(response: HTTPResponse) -> Validators:
    return Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _error_code(response: HTTPResponse) -> str | None:
    """The `<Code>` of an S3 error body (NoSuchKey, AccessDenied...), if there is one."""
    match = _ERROR_CODE.search(response.body[:4096])
    return match.group(1).decode() if match else None
