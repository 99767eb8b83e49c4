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
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from bench import iipimage  # noqa: E402
from bench.fidelity import fidelity  # noqa: E402
from bench.floors import draft_thumbnail  # noqa: E402
from bench.images import ensure_jpeg  # noqa: E402
from bench.zoom import (  # noqa: E402
    PAUSE_SECONDS,
    Row,
    Server,
    fetch_all,
    fresh_names,
    measure_sessions,
    session_paths,
)
from iiif_server.config import auto_processes  # noqa: E402

IMAGE_CACHE = REPO / "bench" / ".images"
DECODED_BUDGET_MB = 512


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
    # BENCH_IIIF_SERVER_X=... reaches the measured server as IIIF_SERVER_X (to compare
    # settings); what a row pins (its processes) wins over it.
    chosen = {k[6:]: v for k, v in os.environ.items() if k.startswith("BENCH_IIIF_SERVER_")}
    environment.update(chosen)
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
        processes = environment.get("IIIF_SERVER_PROCESSES", "auto")
        wait_for_fronts(port, auto_processes() if processes == "auto" else int(processes))
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
        f"{'measurement':50} {'reqs':>5} {'total s':>8} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'req/s':>7} {'first9':>7}  vs"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        p50 = f"{statistics.median(row.latencies) * 1000:7.1f}" if row.latencies else " " * 7
        p95 = f"{percentile(row.latencies, 0.95) * 1000:7.1f}" if row.latencies else " " * 7
        rps = row.rps if row.rps is not None else (row.requests / row.total if row.total else 0)
        total = f"{row.total:8.2f}" if row.total else " " * 8
        first = f"{row.first:7.3f}" if row.first is not None else " " * 7
        versus = f"{row.ratio} {row.floor}".strip()
        print(f"{row.name:50} {row.requests:5d} {total} {p50} {p95} {rps:7.0f} {first}  {versus}")


def measure_thumbnails(port: int, sources: Path, big: list[Path]) -> list[Row]:
    """Each thumbnail from the server, then the same one by the floor: both see the same
    moment of a noisy machine. Fresh names keep the server's caches cold; each picture
    twice, under two names, so that one slow moment weighs less in the sums."""
    images = [name for tag in ("thumb", "thumb2") for name in fresh_names(sources, big, tag)]
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
    name = f"thumbnails !512,512 of {len(ours)} 6000x4000, cold"
    return [
        Row(name, len(ours), sum(ours), ours, "draft", ratio),
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


def measure_fidelity(
    ours: tuple[int, list[str]], peer: tuple[int, list[str]], source: Path
) -> list[str]:
    """Bytes and PSNR of one session's tiles from each server (warm: the same bytes as cold)."""
    with Image.open(source) as opened:
        pixels = opened.convert("RGB")
    results = {}
    for name, (port, paths) in (("this server", ours), ("IIPImage", peer)):
        tiles = paths[1:]
        results[name] = fidelity(pixels, tiles, fetch_all(port, tiles))
    mine, theirs = results["this server"], results["IIPImage"]
    return [
        f"tiles of one session ({len(ours[1]) - 1}): this server {mine.bytes / 1e6:.2f} MB"
        f" at {mine.psnr:.2f} dB, IIPImage {theirs.bytes / 1e6:.2f} MB at {theirs.psnr:.2f} dB:"
        f" {mine.bytes / theirs.bytes:.2f}x the bytes, {mine.psnr - theirs.psnr:+.2f} dB"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load test")
    parser.add_argument(
        "--repeats", type=int, default=3, help="cold sessions of each kind (medians are compared)"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive Pillow floor")
    parser.add_argument("--sessions-only", action="store_true", help="only the zoom sessions")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    iipimage.ensure_installed()
    big = [ensure_jpeg(IMAGE_CACHE, f"photo-6000-{i}", (6000, 4000), i) for i in range(8)]
    pyramids = [iipimage.pyramid(image, IMAGE_CACHE) for image in big[:4]]
    work = Path(tempfile.mkdtemp(prefix="iiif-bench-"))
    try:
        sources = work / "sources"
        (sources / "bench").mkdir(parents=True)
        (work / "pyramids").mkdir()
        for image in big:
            os.link(image, sources / "bench" / image.name)
        for image in pyramids:
            os.link(image, work / "pyramids" / image.name)
        env = {"IIIF_SERVER_TYPES": "{bench: {source: disk}}", "IIIF_SERVER_DEFAULT_TYPE": "bench"}
        peer_port = free_port()
        with (
            server(sources, work / "cache", **env) as (port, process),
            iipimage.iipimage(
                work / "pyramids",
                work / "nginx",
                peer_port,
                [free_port() for _ in range(os.cpu_count() or 2)],
            ),
        ):
            rss = PeakRss(process.pid)
            ours = (Server(port, "/iiif/3/"), sources / "bench", big)
            peer = (Server(peer_port, "/iiif/", ".tif"), work / "pyramids", pyramids)
            rows, last = measure_sessions(
                ours, peer, (6000, 4000), args.repeats, naive=not args.no_naive
            )
            peak = rss.stop()
            notes = measure_fidelity(
                (port, session_paths(ours[0], big[0].stem, (6000, 4000))),
                (peer_port, session_paths(peer[0], pyramids[0].stem, (6000, 4000))),
                big[0],
            )
            if not args.sessions_only:
                # The fidelity session just rendered 56 tiles: their files are written
                # once the server is quiet, which must not land in the thumbnails' time.
                time.sleep(PAUSE_SECONDS)
                rows += measure_thumbnails(port, sources / "bench", big)
                tile = last[0][-1]
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", tile)
                tile_body = connection.getresponse().read()
        if not args.sessions_only:
            with server(sources, work / "cache", IIIF_SERVER_PROCESSES="1", **env) as (port, _):
                hits_one = wrk(f"http://127.0.0.1:{port}{tile}", args.seconds)
            cores = os.cpu_count() or 2
            with server(sources, work / "cache", IIIF_SERVER_PROCESSES=str(cores), **env) as (
                port,
                _,
            ):
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
        print("\nfirst9: seconds to info.json and the first 9 tiles (median over clients)")
        print("\n".join(notes))
        allowed = DECODED_BUDGET_MB * 2 + 300  # two image workers by default
        print(
            f"peak RSS of all server processes during the deep-zoom sessions: "
            f"{peak / 2**20:.0f} MB (allowed: decoded-image budget {DECODED_BUDGET_MB * 2} MB"
            f" + 300 MB = {allowed} MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
