"""The IIIF benchmark: `python bench/run.py` from the repository root.

Makes deterministic photo-like JPEGs, starts the server with a fresh cache,
and measures in one run a deep-zoom session (cold and warm, 1 and 4
clients), cold thumbnails, and cached hits under load, each next to its
floor measured in the same run: a naive Pillow pipeline, Pillow's `draft`
thumbnail, a bare Tornado handler. Prints one table. Ratios within one run
are the figures to compare; absolute times vary with the machine's load.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.floors import draft_thumbnail, naive_tile  # noqa: E402
from bench.images import ensure_jpeg  # noqa: E402
from bench.session import zoom_session  # noqa: E402

IMAGE_CACHE = REPO / "bench" / ".images"
DECODED_BUDGET_MB = 512


@dataclass
class Row:
    name: str
    requests: int
    total: float  # seconds, wall clock
    latencies: list[float] = field(default_factory=list)
    floor: str = ""
    ratio: str = ""
    rps: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        rss[int(entry.name)] = int(match.group(1)) * 1024 if match else 0
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class PeakRss:
    def __init__(self, pid: int, measure: Callable[[int], int] = tree_rss) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.measure = measure
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.measure(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@contextmanager
def server(sources: Path, cache: Path, **env: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_SERVER_")}
    environment.update(
        IIIF_SERVER_HTTP_PORT=str(port),
        IIIF_SERVER_SOURCE_PATH=str(sources),
        IIIF_SERVER_CACHE_PATH=str(cache),
        IIIF_SERVER_IMAGE_CACHE_MAX_BYTES=f"{DECODED_BUDGET_MB}MiB",
        IIIF_SERVER_LOG_LEVEL="info",  # the access log on, as in production
    )
    environment.update(env)
    log = (cache.parent / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "iiif_server", "serve"],
        cwd=REPO,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, "/health", process)
        wait_for_fronts(port, int(environment.get("IIIF_SERVER_PROCESSES", "1")))
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def wait_for_port(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def wait_for_fronts(port: int, count: int) -> None:
    """Until `count` front processes answer: a load test must not start on one of them."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health")
        seen.add(json.loads(connection.getresponse().read())["process"])
        connection.close()
    if len(seen) < count:
        raise RuntimeError(f"only {len(seen)} of {count} front processes answered")


def client_run(port: int, paths: Sequence[str]) -> list[float]:
    """One client: one keep-alive connection, requests in order; latency of each."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies = []
    for path in paths:
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
        latencies.append(time.perf_counter() - start)
    connection.close()
    return latencies


def concurrently(jobs: Sequence[Callable[[], list[float]]]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    return time.perf_counter() - start, [t for r in results for t in r]


def session_paths(identifier: str, size: tuple[int, int]) -> list[str]:
    return [f"/iiif/3/{identifier}/info.json"] + [
        f"/iiif/3/{identifier}/{tile}" for tile in zoom_session(*size)
    ]


def naive_session(path: Path, size: tuple[int, int]) -> list[float]:
    latencies = []
    for tile in zoom_session(*size):
        start = time.perf_counter()
        naive_tile(str(path), tile)
        latencies.append(time.perf_counter() - start)
    return latencies


def wrk(url: str, seconds: int, connections: int = 50) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk failed:\n{output}")
    return float(match.group(1))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'measurement':44} {'reqs':>5} {'total s':>8} {'p50 ms':>8} {'p95 ms':>8}"
        f" {'req/s':>8}  vs floor"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        p50 = f"{statistics.median(row.latencies) * 1000:8.1f}" if row.latencies else " " * 8
        p95 = f"{percentile(row.latencies, 0.95) * 1000:8.1f}" if row.latencies else " " * 8
        rps = row.rps if row.rps is not None else (row.requests / row.total if row.total else 0)
        total = f"{row.total:8.2f}" if row.total else " " * 8
        versus = f"{row.ratio} {row.floor}".strip()
        print(f"{row.name:44} {row.requests:5d} {total} {p50} {p95} {rps:8.0f}  {versus}")


def fresh_names(sources: Path, images: list[Path], tag: str) -> list[Path]:
    """New names (hard links) for `images`: cold for every cache the server has."""
    names = []
    for image in images:
        name = sources / f"{tag}-{image.name}"
        os.link(image, name)
        names.append(name)
    return names


def cold_sessions(
    port: int, sources: Path, images: list[Path], size: tuple[int, int], repeats: int, tag: str
) -> tuple[float, float, list[float], list[float], list[list[str]]]:
    """`repeats` times: one client per image at once, then the naive pipeline the same way.

    Returns the median totals (ours, naive), all latencies, and the last paths asked.
    """
    totals, naive_totals, lat, naive_lat = [], [], [], []
    sessions: list[list[str]] = []
    for n in range(repeats):
        fresh = fresh_names(sources, images, f"{tag}{n}")
        sessions = [session_paths(image.stem, size) for image in fresh]
        total, latencies = concurrently(
            [functools.partial(client_run, port, paths) for paths in sessions]
        )
        naive_total, naive_latencies = concurrently(
            [functools.partial(naive_session, image, size) for image in fresh]
        )
        totals.append(total)
        naive_totals.append(naive_total)
        lat += latencies
        naive_lat += naive_latencies
    return statistics.median(totals), statistics.median(naive_totals), lat, naive_lat, sessions


def measure_sessions(
    port: int, sources: Path, big: list[Path], size: tuple[int, int], repeats: int
) -> list[Row]:
    """Cold sessions with 1 client, then 4 at once on 4 images, each repeated on fresh
    names; the medians of the totals are compared with the naive pipeline's."""
    rows = []
    for clients, tag in ((1, "one"), (4, "four")):
        total, naive_total, lat, naive_lat, sessions = cold_sessions(
            port, sources, big[:clients], size, repeats, tag
        )
        count = sum(map(len, sessions))
        faster = f"{naive_total / total:.1f}x faster"
        name = f"deep zoom, {clients} client{'s' if clients > 1 else ''}"
        rows.append(Row(f"{name}, cold (median)", count, total, lat, "naive", faster))
        rows.append(Row(f"  floor: naive Pillow, {clients} at once", count - clients,
                        naive_total, naive_lat))  # fmt: skip
        warm = [functools.partial(client_run, port, paths) for paths in sessions]
        total, lat = concurrently(warm)
        rows.append(Row(f"{name}, warm", count, total, lat))
    return rows


def measure_thumbnails(port: int, sources: Path, big: list[Path]) -> list[Row]:
    """Each thumbnail from the server, then the same one by the floor: both see the same
    moment of a noisy machine. Fresh names keep the server's caches cold."""
    images = fresh_names(sources, big, "thumb")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ours, floor = [], []
    for image in images:
        start = time.perf_counter()
        connection.request("GET", f"/iiif/3/{image.stem}/full/!512,512/0/default.jpg")
        response = connection.getresponse()
        if response.status != 200 or not response.read():
            raise RuntimeError(f"thumbnail of {image.stem}: {response.status}")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        draft_thumbnail(str(image), 512)
        floor.append(time.perf_counter() - start)
    connection.close()
    ratio = f"{sum(ours) / sum(floor):.2f}x the time"
    return [
        Row("thumbnails !512,512 of 8 6000x4000, cold", len(ours), sum(ours), ours, "draft", ratio),
        Row("  floor: Pillow draft + Lanczos", len(floor), sum(floor), floor),
    ]


def bare_tornado_rps(work: Path, body: bytes, seconds: int) -> float:
    body_file = work / "tile.jpg"
    body_file.write_bytes(body)
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "floors.py"), str(body_file), str(port)]
    bare = subprocess.Popen(
        [*command, "image/jpeg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, "/", bare)
        return wrk(f"http://127.0.0.1:{port}/tile", seconds)
    finally:
        bare.terminate()
        bare.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load test")
    parser.add_argument(
        "--repeats", type=int, default=3, help="cold sessions of each kind (medians are compared)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    big = [ensure_jpeg(IMAGE_CACHE, f"photo-6000-{i}", (6000, 4000), i) for i in range(8)]
    work = Path(tempfile.mkdtemp(prefix="iiif-bench-"))
    try:
        sources = work / "sources"
        (sources / "bench").mkdir(parents=True)
        for image in big:
            os.link(image, sources / "bench" / image.name)
        env = {"IIIF_SERVER_TYPES": "{bench: {source: disk}}", "IIIF_SERVER_DEFAULT_TYPE": "bench"}
        with server(sources, work / "cache", **env) as (port, process):
            rss = PeakRss(process.pid)
            rows = measure_sessions(port, sources / "bench", big, (6000, 4000), args.repeats)
            peak = rss.stop()
            rows += measure_thumbnails(port, sources / "bench", big)
            tile = session_paths(big[0].stem, (6000, 4000))[-1]
            connection = http.client.HTTPConnection("127.0.0.1", port)
            connection.request("GET", tile)
            tile_body = connection.getresponse().read()
            hits_one = wrk(f"http://127.0.0.1:{port}{tile}", args.seconds)
        cores = os.cpu_count() or 2
        with server(sources, work / "cache", IIIF_SERVER_PROCESSES=str(cores), **env) as (port, _):
            hits_many = wrk(f"http://127.0.0.1:{port}{tile}", args.seconds)
        bare = bare_tornado_rps(work, tile_body, args.seconds)
        rows += [
            Row("cached tile, 50 connections, 1 process", 0, 0, [], "bare Tornado",
                f"{hits_one / bare:.2f}x", rps=hits_one),
            Row(f"cached tile, 50 connections, {cores} processes", 0, 0, [], "1 process",
                f"{hits_many / hits_one:.2f}x", rps=hits_many),
            Row("  floor: bare Tornado handler, bytes in memory", 0, 0, rps=bare),
        ]  # fmt: skip
        print_table(rows)
        allowed = DECODED_BUDGET_MB * 2 + 300  # two image workers by default
        print(
            f"\npeak RSS of all server processes during the deep-zoom sessions: "
            f"{peak / 2**20:.0f} MB (allowed: decoded-image budget {DECODED_BUDGET_MB * 2} MB"
            f" + 300 MB = {allowed} MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
