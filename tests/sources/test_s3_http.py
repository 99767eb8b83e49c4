"""The object store's connections: small requests reuse them, downloads stream as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.sources.fetch import Fetcher, FetchLimits
from iiif_server.sources.s3_client import S3Client
from iiif_server.sources.s3_config import parse_s3
from tests import s3store

pytestmark = pytest.mark.gen_test(timeout=60)


class AnyHop:
    """The store's address is the operator's: S3Client.fetch consults no policy."""

    def trusts_host(self, url: str) -> bool:
        return True

    def allows_redirect(self, url: str) -> bool:
        return False


def proxied_client(
    s3: s3store.S3Store, proxy: s3store.CountingProxy, reuse_connections: bool = True
) -> S3Client:
    settings = parse_s3(s3.type_settings() | {"endpoint_url": proxy.url})
    fetcher = Fetcher(FetchLimits(max_fetches=4))
    return S3Client(settings, fetcher, reuse_connections=reuse_connections)


async def test_small_requests_reuse_one_connection(s3: s3store.S3Store, prefix: str) -> None:
    proxy = s3store.CountingProxy(int(s3.endpoint_url.rsplit(":", 1)[1]))
    await proxy.start()
    client = proxied_client(s3, proxy)
    try:
        for n in range(5):
            await client.put_object(f"{prefix}{n}", b"x" * 1000 * (n + 1), label="t")
        bodies = [await client.get_object(f"{prefix}{n}", label="t") for n in range(5)]
        assert bodies == [b"x" * 1000 * (n + 1) for n in range(5)]
        assert await client.get_object(f"{prefix}none", label="t") is None
        assert len(await client.list_keys(prefix, label="t", limit=100)) == 5
        assert proxy.connections == 1
    finally:
        client.close()
        await proxy.close()


async def test_without_reuse_each_request_connects(s3: s3store.S3Store, prefix: str) -> None:
    proxy = s3store.CountingProxy(int(s3.endpoint_url.rsplit(":", 1)[1]))
    await proxy.start()
    client = proxied_client(s3, proxy, reuse_connections=False)
    try:
        await client.put_object(f"{prefix}a", b"a", label="t")
        assert await client.get_object(f"{prefix}a", label="t") == b"a"
        assert proxy.connections == 2
    finally:
        client.close()
        await proxy.close()


async def test_a_download_streams_whole_to_its_file(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    proxy = s3store.CountingProxy(int(s3.endpoint_url.rsplit(":", 1)[1]))
    await proxy.start()
    client = proxied_client(s3, proxy)
    body = bytes(range(256)) * 4096  # 1 MiB
    try:
        await client.put_object(f"{prefix}big", body, label="t")
        destination = tmp_path / "big"
        validators = await client.fetch(
            client.url_for(f"{prefix}big"), destination, AnyHop(), label="t"
        )
        assert validators is not None and validators.etag
        assert destination.read_bytes() == body
    finally:
        client.close()
        await proxy.close()
