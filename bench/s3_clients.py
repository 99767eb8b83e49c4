"""Which S3 client the `s3` source uses: `python bench/s3_clients.py` from the repository root.

Starts SeaweedFS on loopback (tests/s3store.py), puts one object, and measures in one
run a 64 KiB ranged GET and a whole GET with each candidate, from asyncio as the
server would call it: boto3 in a thread, aiobotocore, obstore, and SigV4-signed GETs
over Tornado's own HTTP client. Candidates not installed are left out. Medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tornado.httpclient import HTTPRequest  # noqa: E402
from tornado.simple_httpclient import SimpleAsyncHTTPClient  # noqa: E402

from iiif_server.sources.sigv4 import Credentials, object_path, sign_get  # noqa: E402
from tests import s3store  # noqa: E402

KEY = "bench/object.bin"
HEADER = 64 * 1024
Get = Callable[[str | None], Awaitable[int]]  # range header or None -> bytes received


async def median_ms(get: Get, byte_range: str | None, repeats: int) -> float:
    await get(byte_range)  # warm the connection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await get(byte_range)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def boto3_thread(store: s3store.S3Store) -> Get:
    client = store.client()

    def get(byte_range: str | None) -> int:
        extra = {"Range": byte_range} if byte_range else {}
        return len(client.get_object(Bucket=s3store.BUCKET, Key=KEY, **extra)["Body"].read())

    async def call(byte_range: str | None) -> int:
        return await asyncio.to_thread(get, byte_range)

    return call


async def aiobotocore_client(store: s3store.S3Store, stack: Any) -> Get | None:
    try:
        from aiobotocore.session import get_session
    except ImportError:
        return None
    client = await stack.enter_async_context(
        get_session().create_client(
            "s3",
            endpoint_url=store.endpoint_url,
            region_name=s3store.REGION,
            aws_access_key_id=s3store.ACCESS_KEY_ID,
            aws_secret_access_key=s3store.SECRET_ACCESS_KEY,
        )
    )

    async def call(byte_range: str | None) -> int:
        extra = {"Range": byte_range} if byte_range else {}
        response = await client.get_object(Bucket=s3store.BUCKET, Key=KEY, **extra)
        async with response["Body"] as body:
            return len(await body.read())

    return call


def obstore_client(store: s3store.S3Store) -> Get | None:
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return None
    client = S3Store(
        s3store.BUCKET,
        endpoint=store.endpoint_url,
        region=s3store.REGION,
        access_key_id=s3store.ACCESS_KEY_ID,
        secret_access_key=s3store.SECRET_ACCESS_KEY,
        client_options={"allow_http": True},
    )

    async def call(byte_range: str | None) -> int:
        if byte_range:
            data = await obstore.get_range_async(client, KEY, start=0, end=HEADER)
            return len(data)
        result = await obstore.get_async(client, KEY)
        return len(await result.bytes_async())

    return call


def tornado_sigv4(store: s3store.S3Store) -> Get:
    client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=10**9)
    url = store.endpoint_url + object_path(s3store.BUCKET, KEY)
    credentials = Credentials(s3store.ACCESS_KEY_ID, s3store.SECRET_ACCESS_KEY)

    async def call(byte_range: str | None) -> int:
        headers = sign_get(url, s3store.REGION, credentials)
        if byte_range:
            headers["Range"] = byte_range
        received = 0

        def count(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)

        # Streamed, as the source streams a download into its file.
        request = HTTPRequest(url, headers=headers, streaming_callback=count)
        await client.fetch(request, raise_error=True)
        return received

    return call


async def measure(store: s3store.S3Store, repeats: int) -> list[tuple[str, float, float]]:
    from contextlib import AsyncExitStack

    rows = []
    async with AsyncExitStack() as stack:
        candidates: list[tuple[str, Get | None]] = [
            ("boto3 in a thread", boto3_thread(store)),
            ("aiobotocore", await aiobotocore_client(store, stack)),
            ("obstore", obstore_client(store)),
            ("SigV4 over Tornado", tornado_sigv4(store)),
        ]
        for name, get in candidates:
            if get is None:
                print(f"{name}: not installed, left out")
                continue
            ranged = await median_ms(get, f"bytes=0-{HEADER - 1}", repeats)
            whole = await median_ms(get, None, repeats)
            rows.append((name, ranged, whole))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=8.0, help="object size")
    parser.add_argument("--repeats", type=int, default=30)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, s3store.s3_store(Path(work)) as store:
        body = os.urandom(int(options.size_mb * 10**6))
        store.client().put_object(Bucket=s3store.BUCKET, Key=KEY, Body=body)
        rows = asyncio.run(measure(store, options.repeats))
    print(f"\nmedian of {options.repeats}, object {options.size_mb:g} MB")
    print(f"{'client':<22}{'64 KiB range ms':>17}{'whole GET ms':>15}")
    for name, ranged, whole in rows:
        print(f"{name:<22}{ranged:>17.2f}{whole:>15.1f}")


if __name__ == "__main__":
    main()
