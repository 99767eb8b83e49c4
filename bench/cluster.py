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
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def fetch(node: LiveServer, path: str) -> None:
    status, _, body = node.get(path)
    if status != 200:
        raise RuntimeError(f"{path}: {status} {body[:200]!r}")


def session(node: LiveServer, identifier: str, size: tuple[int, int]) -> float:
    """info.json, then its tiles `CONNECTIONS` at a time, as a browser fetches them."""
    tiles = [f"/iiif/3/{identifier}/{tile}" for tile in zoom_session(*size)]
    start = time.perf_counter()
    fetch(node, f"/iiif/3/{identifier}/info.json")
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(lambda path: fetch(node, path), tiles))
    return time.perf_counter() - start


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
    options = parser.parse_args()
    width, height = (int(n) for n in options.size.split("x"))
    paths = [
        ensure_jpeg(IMAGE_CACHE, f"cluster-{width}x{height}-{seed}", (width, height), seed)
        for seed in range(options.images)
    ]
    tiles = len(zoom_session(width, height))
    cold, shared, warm = [], [], []
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        sources = work / "sources"
        (sources / "sample").mkdir(parents=True)
        for path in paths:
            shutil.copy(path, sources / "sample" / path.name)
        with cluster(work, sources) as nodes:
            a, b = nodes.nodes[0], nodes.nodes[1]
            for path in paths:
                cold.append(session(a, path.name, (width, height)))
                settle(nodes, a)
                shared.append(session(b, path.name, (width, height)))
                warm.append(session(a, path.name, (width, height)))
            renders_b = nodes.renders(b)
    cold_s, shared_s = statistics.median(cold), statistics.median(shared)
    warm_s = statistics.median(warm)
    print(
        f"\ndeep-zoom session (info.json + {tiles} tiles),"
        f" {options.images} JPEGs of {width}x{height}"
    )
    print(f"{'session':<40}{'median s':>10}")
    print(f"{'fully cold (node A)':<40}{cold_s:>10.3f}")
    print(f"{'node B after node A (shared tiers)':<40}{shared_s:>10.3f}")
    print(f"{'node A again (its own caches)':<40}{warm_s:>10.3f}")
    print(f"ratio cold / shared: {cold_s / shared_s:.1f}x (renders on node B: {renders_b:.0f})")
    if not options.no_s3:
        subprocess.run([sys.executable, str(REPO / "bench" / "s3.py")], check=True)


if __name__ == "__main__":
    main()
