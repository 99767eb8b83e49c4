"""Downloading one web source into a local file, with every limit a public server needs.

One `Fetcher` per server: at most `max_fetches` downloads at a time (a bounded number
wait, each for a bounded time), connect and total timeouts, a byte limit enforced while
the body streams, image content types only, redirects followed by hand so that each hop
is checked by the source's `HopPolicy`.

Internal addresses are refused by the resolver of the connection itself (see
`PublicAddressResolver`), so the check applies to the address actually connected to,
not to an earlier DNS answer that a rebinding attacker could change.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from tornado import httputil
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.netutil import DefaultLoopResolver
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from .. import __version__
from ..errors import NotFound, Overloaded, ServerError, UpstreamError, UpstreamTimeout

logger = logging.getLogger(__name__)

_REDIRECTS = (301, 302, 303, 307, 308)
_OUTCOMES: dict[type[ServerError], str] = {
    NotFound: "not_found",
    UpstreamTimeout: "timeout",
    Overloaded: "overloaded",
}
_GONE = (404, 410)


@dataclass(frozen=True, kw_only=True)
class FetchLimits:
    max_fetches: int = 8
    max_waiting: int = 256
    connect_timeout: float = 10.0
    total_timeout: float = 60.0
    max_redirects: int = 5
    max_bytes: int = 200 * 10**6
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class Validators:
    """What a conditional request needs to ask "has it changed?"."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class HopPolicy(Protocol):
    """A source kind's rules for the URLs a download may visit."""

    def trusts_host(self, url: str) -> bool:
        """True when `url` may reach internal addresses even if they are not allowed."""
        ...

    def allows_redirect(self, url: str) -> bool:
        """True when a redirect to `url` may be followed."""
        ...


def redact(url: str) -> str:
    """`url` for logs: no user, password or query (they may hold credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


def same_host(a: str, b: str) -> bool:
    """Same host name (any scheme and port: the same machine, as far as addresses go)."""
    return (urlsplit(a).hostname or "").lower() == (urlsplit(b).hostname or "").lower()


def is_public_address(text: str) -> bool:
    """False for loopback, private, link-local, shared, reserved and multicast addresses."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 addresses wrapped in IPv6 are judged as the IPv4 address they carry.
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return address.is_global and not address.is_multicast


class RefusedAddress(OSError):
    """The host resolved only to addresses a download may not reach."""


class PublicAddressResolver(DefaultLoopResolver):
    """Resolves as usual, then drops every internal address; none left is an error."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        addresses = await super().resolve(host, port, family)
        public = [(fam, addr) for fam, addr in addresses if is_public_address(addr[0])]
        if not public:
            raise RefusedAddress("internal address refused")
        return public


class _Halt(httputil.HTTPInputError):
    # An HTTPInputError subclass: Tornado closes the connection quietly instead of
    # logging a traceback. It reports "connection closed"; the reason is kept aside.
    pass


class Exchange:
    """One request's response: headers parsed as they arrive, a 200 body streamed to disk.

    `images_only`: a body of any other content type is refused (the open web); an
    object store's content types are whatever the uploader set, so it may not be.
    """

    def __init__(
        self, destination: Path, max_bytes: int, label: str, *, images_only: bool = True
    ) -> None:
        self._destination = destination
        self._images_only = images_only
        self._max_bytes = max_bytes
        self._label = label
        self._lines: list[str] = []
        self._fd: int | None = None
        self.received = 0
        self.failure: ServerError | None = None

    def on_header_line(self, line: str) -> None:
        if line not in ("\r\n", "\n"):
            self._lines.append(line)
            return
        lines, self._lines = self._lines, []
        start = httputil.parse_response_start_line(lines[0].strip())
        if start.code != 200:
            return  # 1xx is followed by more headers; other bodies are discarded
        headers = httputil.HTTPHeaders.parse("".join(lines[1:]))
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self._images_only and not content_type.startswith("image/"):
            shown = content_type[:60] or "none"
            self._halt(UpstreamError(f"{self._label}: not an image (content type {shown})"))
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self._max_bytes:
            self._halt(self._too_large())
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._fd = os.open(self._destination, flags, 0o644)

    def on_chunk(self, chunk: bytes) -> None:
        if self._fd is None:
            return  # the body of a redirect or an error page
        self.received += len(chunk)
        if self.received > self._max_bytes:
            self._halt(self._too_large())
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _too_large(self) -> UpstreamError:
        return UpstreamError(f"{self._label}: the source is larger than {self._max_bytes} bytes")

    def _halt(self, failure: ServerError) -> None:
        self.failure = failure
        raise _Halt(failure.message)


class Fetcher:
    """Downloads web sources into local files within `FetchLimits`."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.max_fetches)
        self._waiting = 0
        self._clients: dict[bool, SimpleAsyncHTTPClient] = {}
        # Outcome -> downloads, for /metrics: ok, not_modified, or the error's kind.
        self.outcomes: collections.Counter[str] = collections.Counter()

    @property
    def waiting(self) -> int:
        """Downloads waiting for a slot right now."""
        return self._waiting

    def _client(self, guarded: bool) -> SimpleAsyncHTTPClient:
        # Made on first use, inside the running loop the client will belong to.
        client = self._clients.get(guarded)
        if client is None:
            client = SimpleAsyncHTTPClient(
                force_instance=True,
                max_clients=self.limits.max_fetches,
                resolver=PublicAddressResolver() if guarded else DefaultLoopResolver(),
                # Our own check stops at max_bytes; Tornado's cut is the backstop for
                # chunks announced larger than that (a read is at most 64 KiB).
                max_body_size=self.limits.max_bytes + 2**16,
            )
            self._clients[guarded] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    async def fetch(
        self,
        url: str,
        destination: Path,
        policy: HopPolicy,
        *,
        label: str,
        validators: Validators | None = None,
    ) -> Validators | None:
        """Download `url` into `destination`; its validators, or None when not modified.

        Raises NotFound (upstream 404/410), UpstreamTimeout, UpstreamError, Overloaded.
        Messages name `label` (the identifier), never the URL.
        """
        try:
            validators = await self._fetch(url, destination, policy, label, validators)
        except ServerError as error:
            self.outcomes[_OUTCOMES.get(type(error), "error")] += 1
            raise
        self.outcomes["ok" if validators is not None else "not_modified"] += 1
        return validators

    async def _fetch(
        self,
        url: str,
        destination: Path,
        policy: HopPolicy,
        label: str,
        validators: Validators | None,
    ) -> Validators | None:
        async with self.slot(label):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.limits.total_timeout
            trusted = policy.trusts_host(url)
            for _hop in range(self.limits.max_redirects + 1):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise UpstreamTimeout(f"{label}: the upstream server did not answer in time")
                guarded = not (self.limits.allow_private_addresses or trusted)
                response = await self._request(
                    url, destination, guarded, remaining, label, validators
                )
                code = response.code
                if code == 200:
                    return Validators(
                        response.headers.get("ETag"), response.headers.get("Last-Modified")
                    )
                if code == 304 and validators is not None:
                    return None
                if code in _GONE:
                    raise NotFound(f"no image {label}")
                location = response.headers.get("Location")
                if code not in _REDIRECTS or not location:
                    raise UpstreamError(f"{label}: the upstream server answered {code}")
                url = urljoin(url, location.strip())
                if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                    raise UpstreamError(f"{label}: redirected to a URL that cannot be fetched")
                if not policy.allows_redirect(url):
                    raise UpstreamError(f"{label}: redirected to a URL this type does not allow")
                trusted = policy.trusts_host(url)
            raise UpstreamError(f"{label}: more than {self.limits.max_redirects} redirects")

    async def _request(
        self,
        url: str,
        destination: Path,
        guarded: bool,
        timeout: float,
        label: str,
        validators: Validators | None,
    ) -> HTTPResponse:
        exchange = Exchange(destination, self.limits.max_bytes, label)
        request = HTTPRequest(
            url,
            headers=validators.headers() if validators else None,
            connect_timeout=min(self.limits.connect_timeout, timeout),
            request_timeout=timeout,
            follow_redirects=False,
            decompress_response=False,  # the bytes stored are the bytes sent
            user_agent=f"iiif-server/{__version__}",
            header_callback=exchange.on_header_line,
            streaming_callback=exchange.on_chunk,
        )
        try:
            return await self._client(guarded).fetch(request, raise_error=False)
        except Exception as error:
            raise self._failure(error, exchange, url, label) from None
        finally:
            exchange.close()

    @staticmethod
    def _failure(error: Exception, exchange: Exchange, url: str, label: str) -> ServerError:
        if exchange.failure is not None:
            return exchange.failure
        if isinstance(error, HTTPTimeoutError):
            return UpstreamTimeout(f"{label}: the upstream server did not answer in time")
        if isinstance(error, RefusedAddress):
            logger.warning("refused to fetch %s: internal address", redact(url))
            return UpstreamError(f"{label}: the source's address is not allowed")
        detail = (
            str(error) if isinstance(error, HTTPClientError | OSError) else type(error).__name__
        )
        logger.info("fetching %s failed: %s", redact(url), detail)
        return UpstreamError(f"{label}: the upstream connection failed")

    @asynccontextmanager
    async def slot(self, label: str) -> AsyncIterator[None]:
        """One of `max_fetches` download slots; waiting is bounded in number and time."""
        if self._slots.locked() and self._waiting >= self.limits.max_waiting:
            raise Overloaded(f"{label}: too many downloads waiting")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.limits.total_timeout)
        except TimeoutError:
            raise Overloaded(f"{label}: no download slot became free in time") from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
