"""A cold deep-zoom session on node B after node A served it, against a fully cold one.

`python bench/cluster.py` from the repository root. Starts the cluster topology of the
tests (tests/cluster/topology.py: SeaweedFS, redis-server, three nodes, Debian's nginx)
with photo-like JPEGs on a disk all nodes read, then for each image: the OpenSeadragon
session of bench/session.py (info.json, then its tiles over 6 connections) on node A,
every cache cold; then the same session on node B, whose own caches are cold but
which finds A's infos in Redis and A's derivatives in the shared bucket. Prints the
medians and their ratio, then runs bench/s3.py (cold info.json from the store against
disk) for the second figure of the cluster's benchmark.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.images import ensure_jpeg  # noqa: E402
from bench.session import zoom_session  # noqa: E402
from tests.cluster.topology import Cluster, cluster  # noqa: E402
from tests.live import LiveServer  # noqa: E402

IMAGE_CACHE = REPO / "bench" / ".images"
CONNECTIONS = 6  # a browser's connections to one host


_ACCESS = re.compile(r" 200 GET /iiif/3/\S+/(info\.json|\S+default\.jpg) \(.*\) ([0-9.]+)ms$")


class Browser:
    """Up to `CONNECTIONS` kept-alive connections per node, as a browser holds them
    (one per thread); `--new-connections`: a new connection per request instead."""

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []

    def fetch(self, node: LiveServer, path: str) -> None:
        if not self.keep_alive:
            status, _, body = node.get(path)
        else:
            connections = self._local.__dict__.setdefault("connections", {})
            connection = connections.get(node.port)
            if connection is None:
                connection = connections[node.port] = http.client.HTTPConnection(
                    "127.0.0.1", node.port, timeout=30
                )
                self._opened.append(connection)
            connection.request("GET", path)
            response = connection.getresponse()
            status, body = response.status, response.read()
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:200]!r}")

    def session(self, node: LiveServer, identifier: str, size: tuple[int, int]) -> float:
        """info.json, then its tiles `CONNECTIONS` at a time, as a browser fetches them."""
        tiles = [f"/iiif/3/{identifier}/{tile}" for tile in zoom_session(*size)]
        self._local = threading.local()  # a new browser: no connection yet
        start = time.perf_counter()
        self.fetch(node, f"/iiif/3/{identifier}/info.json")
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            list(pool.map(lambda path: self.fetch(node, path), tiles))
        elapsed = time.perf_counter() - start
        for connection in self._opened:
            connection.close()
        self._opened.clear()
        return elapsed


class ServerTimes:
    """The node's own time per tile (its access log), for the sessions since the last call."""

    def __init__(self, node: LiveServer) -> None:
        self.node = node
        self.offset = 0

    def tiles(self) -> list[float]:
        time.sleep(0.3)  # the node writes its access lines in batches, 0.2 s apart at most
        with self.node.log.open("rb") as log:
            log.seek(self.offset)
            lines = log.read().decode("utf-8", "replace").splitlines()
            self.offset = log.tell()
        matches = (_ACCESS.search(line) for line in lines)
        return [float(m.group(2)) for m in matches if m and m.group(1) != "info.json"]


def settle(nodes: Cluster, node: LiveServer) -> None:
    """Until the node's background writes to the bucket have landed."""
    for _ in range(1000):
        if nodes.health(node)["shared"]["derivatives"]["writes_in_flight"] == 0:
            return
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=6, help="distinct images")
    parser.add_argument("--size", default="4000x3000", help="image size, WxH")
    parser.add_argument("--no-s3", action="store_true", help="skip bench/s3.py")
    parser.add_argument(
        "--new-connections", action="store_true", help="a new connection per request"
    )
    options = parser.parse_args()
    width, height = (int(n) for n in options.size.split("x"))
    paths = [
        ensure_jpeg(IMAGE_CACHE, f"cluster-{width}x{height}-{seed}", (width, height), seed)
        for seed in range(options.images)
    ]
    tiles = len(zoom_session(width, height))
    browser = Browser(keep_alive=not options.new_connections)
    cold, shared, warm = [], [], []
    # The nodes' own time per tile (ms), from their access logs.
    served: dict[str, list[float]] = {"cold": [], "shared": [], "warm": []}
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        sources = work / "sources"
        (sources / "sample").mkdir(parents=True)
        for path in paths:
            shutil.copy(path, sources / "sample" / path.name)
        with cluster(work, sources) as nodes:
            a, b = nodes.nodes[0], nodes.nodes[1]
            log_a, log_b = ServerTimes(a), ServerTimes(b)
            log_a.tiles()
            log_b.tiles()
            for path in paths:
                cold.append(browser.session(a, path.name, (width, height)))
                served["cold"] += log_a.tiles()
                settle(nodes, a)
                shared.append(browser.session(b, path.name, (width, height)))
                served["shared"] += log_b.tiles()
                warm.append(browser.session(a, path.name, (width, height)))
                served["warm"] += log_a.tiles()
            renders_b = nodes.renders(b)
            shared_b = nodes.health(b)["shared"]["derivatives"]
    cold_s, shared_s = statistics.median(cold), statistics.median(shared)
    connections = "a new connection per request" if options.new_connections else "kept alive"
    print(
        f"\ndeep-zoom session (info.json + {tiles} tiles over {CONNECTIONS} connections,"
        f" {connections}), {options.images} JPEGs of {width}x{height}"
    )
    print(f"{'session':<40}{'median s':>10}{'node ms/tile':>14}")
    for label, times, kind in (
        ("fully cold (node A)", cold, "cold"),
        ("node B after node A (shared tiers)", shared, "shared"),
        ("node A again (its own caches)", warm, "warm"),
    ):
        print(
            f"{label:<40}{statistics.median(times):>10.3f}{statistics.median(served[kind]):>14.2f}"
        )
    print(
        f"ratio cold / shared: {cold_s / shared_s:.1f}x (node B: {renders_b:.0f} renders,"
        f" {shared_b['hits']} tiles from the bucket, {shared_b['bundles_read']} bundles read)"
    )
    if not options.no_s3:
        subprocess.run([sys.executable, str(REPO / "bench" / "s3.py")], check=True)


if __name__ == "__main__":
    main()
