"""The resources benchmark: `python bench/resources.py` from the repository root.

Measured side by side in one run, ratios reported:
- `img:w=200` of 3000x4500 JPEG covers, cold (a fresh name each time), each
  next to the Pillow floor (`draft`, then Lanczos, JPEG at the same quality);
- a new small size of the same covers once their reduced copies exist;
- a 20 KB chapter out of a 300-entry ePub under `wrk -c50`, next to a bare
  Tornado handler answering the same bytes from memory;
- a 50 MB ePub downloaded by 10 clients at once (curl), next to Debian's nginx
  started here on loopback, with the peak RSS of all server processes.
Needs `wrk`, `nginx` and `curl`; as root, missing ones are installed with apt-get.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.floors import draft_thumbnail  # noqa: E402
from bench.images import ensure_jpeg  # noqa: E402
from bench.run import IMAGE_CACHE, PeakRss, free_port, server, wait_for_port, wrk  # noqa: E402

COVER_SIZE = (3000, 4500)
QUALITY = 90  # the floor's JPEG quality, asked of the server too
TOOLS = {"wrk": "wrk", "nginx": "nginx", "curl": "curl"}  # command: Debian package


def ensure_tools() -> bool:
    missing = [package for command, package in TOOLS.items() if shutil.which(command) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False, env=env)
        missing = [p for c, p in TOOLS.items() if shutil.which(c) is None]
    if missing:
        print(f"needed: {', '.join(missing)} (Debian: apt-get install {' '.join(missing)})")
        return False
    return True


def timed_get(connection: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    return time.perf_counter() - start, body


def wait_idle(port: int) -> None:
    """Until the image workers and the background reduced copies are done."""
    for _ in range(600):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/health")
        health = json.loads(connection.getresponse().read())
        connection.close()
        busy = sum(pool["busy"] + pool["queued"] for pool in health["pools"])
        if not busy and not health["resources"]["reducing"]:
            return
        time.sleep(0.02)
    raise RuntimeError("the server did not become idle")


def measure_resizes(port: int, books: Path, cover: Path, count: int) -> list[str]:
    """Cold resizes alternating with the floor, then a new size from the reduced copies."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    # One request first, not measured: the first of a process loads Pillow's plugins.
    os.link(cover, books / "warm-up.jpg")
    timed_get(connection, "/resources/params;v=0;img:w=10/warm-up.jpg")
    draft_thumbnail(str(books / "warm-up.jpg"), 10)
    ours, floor, reduced = [], [], []
    for n in range(count):
        name = f"cover-{n}-{time.monotonic_ns()}.jpg"
        os.link(cover, books / name)
        wait_idle(port)
        seconds, body = timed_get(
            connection, f"/resources/params;v=0;img:w=200;img:q={QUALITY}/{name}"
        )
        ours.append(seconds)
        wait_idle(port)  # the reduced copies are made: the floor runs on a quiet server
        start = time.perf_counter()
        draft_thumbnail(str(books / name), 300)  # 3000x4500 into 300x300: 200x300
        floor.append(time.perf_counter() - start)
        seconds, _ = timed_get(
            connection, f"/resources/params;v=0;img:w=120;img:q={QUALITY}/{name}"
        )
        reduced.append(seconds)
        if not body:
            raise RuntimeError("empty resize")
    connection.close()
    cold, pillow, small = (statistics.median(v) * 1000 for v in (ours, floor, reduced))
    return [
        row(f"resize img:w=200 of {count} 3000x4500 JPEGs, cold", f"{cold:.1f} ms",
            f"{cold / pillow:.2f}x the floor (target <= 1.2x)"),
        row("  floor: Pillow draft + Lanczos + JPEG", f"{pillow:.1f} ms", ""),
        row("new size img:w=120 from reduced copies", f"{small:.1f} ms",
            f"{cold / small:.1f}x faster than cold (target >= 5x)"),
    ]  # fmt: skip


def make_epub(path: Path, entries: int, chapter_bytes: int, extra: int = 0) -> bytes:
    """An ePub of `entries` chapters of text, plus `extra` bytes of incompressible images."""
    text = ("<p>" + "It was a dark and stormy night; the rain fell in torrents. " * 400)[
        :chapter_bytes
    ]
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for n in range(entries):
            chapter = f"<!-- {n} -->{text}"[:chapter_bytes].encode()
            book.writestr(f"OEBPS/ch{n}.xhtml", chapter, compress_type=zipfile.ZIP_DEFLATED)
        if extra:
            rng = os.urandom(extra)
            book.writestr("OEBPS/images/plates.bin", rng, compress_type=zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as book:
        return book.read(f"OEBPS/ch{entries // 2}.xhtml")


@contextmanager
def bare_tornado(work: Path, body: bytes) -> Iterator[int]:
    body_file = work / "chapter.xhtml"
    body_file.write_bytes(body)
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "floors.py"), str(body_file), str(port),
               "application/xhtml+xml; charset=utf-8"]  # fmt: skip
    bare = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, "/", bare)
        yield port
    finally:
        bare.terminate()
        bare.wait()


def interleaved(ours: str, floor: str, seconds: int, rounds: int) -> tuple[float, float]:
    """Median req/s of each, measured in turns (floor, ours, floor, ...) on a noisy machine."""
    mine, bare = [], [wrk(floor, seconds)]
    for _ in range(rounds):
        mine.append(wrk(ours, seconds))
        bare.append(wrk(floor, seconds))
    return statistics.median(mine), statistics.median(bare)


@contextmanager
def nginx(root: Path, work: Path) -> Iterator[int]:
    port = free_port()
    prefix = work / "nginx"
    prefix.mkdir()
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;\n"
        "events { worker_connections 1024; }\n"
        "http { access_log off; sendfile on; tcp_nopush on; default_type application/epub+zip;\n"
        f"  client_body_temp_path {temp['body']}; proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']}; uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n"
        f"  server {{ listen 127.0.0.1:{port}; location /resources/ {{ alias {root}/; }} }} }}\n"
    )
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait()


def download_mb_per_s(port: int, path: str, clients: int, size: int) -> float:
    """MB/s of `clients` curl downloads of `path` at once."""
    start = time.perf_counter()
    downloads = [
        subprocess.Popen(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"])
        for _ in range(clients)
    ]
    if any(download.wait() != 0 for download in downloads):
        raise RuntimeError(f"a download of {path} failed")
    return clients * size / 1e6 / (time.perf_counter() - start)


def downloads(
    port: int, nginx_port: int, pid: int, size: int, repeats: int
) -> tuple[float, float, int]:
    """Median MB/s of ours and of nginx, in turns, and our peak RSS while downloading."""
    path = "/resources/large.epub"
    ours, theirs, peak = [], [], 0
    for _ in range(repeats):
        theirs.append(download_mb_per_s(nginx_port, path, 10, size))
        rss = PeakRss(pid)
        ours.append(download_mb_per_s(port, path, 10, size))
        peak = max(peak, rss.stop())
    return statistics.median(ours), statistics.median(theirs), peak


def row(name: str, value: str, versus: str) -> str:
    return f"{name:48} {value:>14}  {versus}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--covers", type=int, default=12, help="cold resizes (medians compared)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="wrk runs of each, and runs of the 10 downloads"
    )
    args = parser.parse_args(argv)
    if not ensure_tools():
        return 2
    cover = ensure_jpeg(IMAGE_CACHE, "cover-3000x4500", COVER_SIZE, 7)
    work = Path(tempfile.mkdtemp(prefix="resources-bench-"))
    work.chmod(0o755)  # nginx's workers run as another user
    try:
        books = work / "books"
        books.mkdir()
        chapter = make_epub(books / "chapters.epub", 300, 20_000)
        big = books / "large.epub"
        make_epub(big, 20, 20_000, extra=50 * 10**6)
        size = big.stat().st_size
        env = {"IIIF_SERVER_RESOURCES": json.dumps({"root": str(books)})}
        (work / "sources").mkdir()
        with server(work / "sources", work / "cache", **env) as (port, process):
            rows = measure_resizes(port, books, cover, args.covers)
            url = f"http://127.0.0.1:{port}/resources/chapters.epub/OEBPS/ch150.xhtml"
            with bare_tornado(work, chapter) as bare_port:
                bare_url = f"http://127.0.0.1:{bare_port}/chapter"
                ours, bare = interleaved(url, bare_url, args.seconds, args.repeats)
            with nginx(books, work) as nginx_port:
                download, floor, peak = downloads(port, nginx_port, process.pid, size, args.repeats)
        rows += [
            row("20 KB chapter from a 300-entry ePub, -c50", f"{ours:.0f} req/s",
                f"{ours / bare:.2f}x bare Tornado (target >= 0.6x)"),
            row("  floor: bare Tornado, same bytes from memory", f"{bare:.0f} req/s", ""),
            row(f"{size / 1e6:.0f} MB ePub, 10 clients at once", f"{download:.0f} MB/s",
                f"{download / floor:.2f}x nginx; peak RSS {peak / 2**20:.0f} MB (all processes)"),
            row("  nginx (1 worker, sendfile), same file", f"{floor:.0f} MB/s", ""),
        ]  # fmt: skip
        header = row("measurement", "median", "versus")
        print(header)
        print("-" * len(header))
        print("\n".join(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
