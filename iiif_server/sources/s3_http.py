"""The HTTP clients of one S3Client: kept-alive connections where they pay.

Tornado's simple client opens a new connection per request. For the small requests
(ranged reads, the shared derivative tier's GETs, PUTs, DELETEs and listings) that
costs as much as the request itself: against SeaweedFS on loopback a 30 KB GET took
2.2 ms and 0.86 ms of the front's CPU with it, 1.2 ms and 0.45 ms over libcurl's
kept-alive, pooled connections (README, "Running several nodes"). So with pycurl
installed (install_requires; its wheels bundle libcurl) those requests go through a
`CurlAsyncHTTPClient` of the S3Client's own, and the rest of the server keeps the
simple client. Whole-object downloads stay on the simple client: Tornado's curl
client hands streamed headers and chunks to the loop later (`add_callback`), so a
body could not be refused while it arrives, and a download is one request per object.
Without pycurl (a platform with no wheel) every request uses the simple client.
"""

from __future__ import annotations

from typing import Any

from tornado.httpclient import AsyncHTTPClient
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

try:
    import pycurl  # type: ignore[import-untyped]
    from tornado.curl_httpclient import CurlAsyncHTTPClient, CurlError
except ImportError:  # no pycurl: the simple client for everything
    pycurl = None

_CURL_TIMEOUT = 28  # CURLE_OPERATION_TIMEDOUT: connecting or answering too slowly


class StoreClients:
    """Made on first use, inside the running loop the clients will belong to."""

    def __init__(self, max_clients: int, max_body_size: int, *, reuse: bool = True) -> None:
        self._max_clients = max_clients
        self._max_body_size = max_body_size
        self.reuse = reuse and pycurl is not None
        self._simple: SimpleAsyncHTTPClient | None = None
        self._kept_alive: AsyncHTTPClient | None = None

    def client(self, *, streaming: bool) -> AsyncHTTPClient:
        if not streaming and self.reuse:
            if self._kept_alive is None:
                self._kept_alive = CurlAsyncHTTPClient(
                    force_instance=True, max_clients=self._max_clients
                )
            return self._kept_alive
        if self._simple is None:
            self._simple = SimpleAsyncHTTPClient(
                force_instance=True,
                max_clients=self._max_clients,
                max_body_size=self._max_body_size,
            )
        return self._simple

    def limit_body(self, curl: Any) -> None:
        """`prepare_curl_callback`: a larger body is cut off (what max_body_size does)."""
        curl.setopt(pycurl.MAXFILESIZE_LARGE, self._max_body_size)

    def close(self) -> None:
        for client in (self._simple, self._kept_alive):
            if client is not None:
                client.close()
        self._simple = self._kept_alive = None


def timed_out(error: Exception) -> str | None:
    """Which phase timed out ("connecting", "answering") if `error` is a timeout, else None."""
    if isinstance(error, HTTPTimeoutError):
        return "connecting" if "connecting" in str(error) else "answering"
    if pycurl is not None and isinstance(error, CurlError) and error.errno == _CURL_TIMEOUT:
        # libcurl names the phase: "Connection timed out", "Failed to connect ... Timeout
        # was reached", against "Operation timed out after ... bytes received".
        return "answering" if "Operation timed out" in str(error) else "connecting"
    return None
