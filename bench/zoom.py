"""Cold deep-zoom sessions: this server, the IIPImage peer and the naive floor, interleaved.

Each repeat puts fresh names (hard links) on the images, so every cache of
both servers is cold, then runs the same OpenSeadragon session against this
server, against IIPImage on the pyramids, and through the naive Pillow
pipeline, one after the other: the three see the same moment of a noisy
machine. This server and IIPImage take turns at going first, and each
session starts after a pause in which the previous one's after-work ends.
Medians of the repeats are compared, and the ratio of each repeat is printed
too (the spread).
"""

from __future__ import annotations

import functools
import http.client
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.floors import naive_tile
from bench.session import zoom_session

FIRST_TILES = 9  # what a viewer shows first: the tiles after info.json
# Between two sessions: what a server does after one (writing its derivative cache,
# making buffers while idle) must not land in the next, the other server's.
PAUSE_SECONDS = 1.0


@dataclass
class Row:
    name: str
    requests: int
    total: float  # seconds, wall clock
    latencies: list[float] = field(default_factory=list)
    floor: str = ""
    ratio: str = ""
    rps: float | None = None
    first: float | None = None  # seconds to info.json and the first tiles


@dataclass(frozen=True)
class Server:
    """Where a session's requests go: a port and the IIIF prefix of the identifiers."""

    port: int
    prefix: str  # "/iiif/3/" here, "/iiif/" for IIPImage (Image API 2)
    suffix: str = ""  # of the file names: ".tif" for the pyramids


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


def fetch_all(port: int, paths: Sequence[str]) -> list[bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    bodies = []
    for path in paths:
        connection.request("GET", path)
        response = connection.getresponse()
        bodies.append(response.read())
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
    connection.close()
    return bodies


def concurrently(jobs: Sequence[Callable[[], list[float]]]) -> tuple[float, list[list[float]]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    return time.perf_counter() - start, results


def session_paths(server: Server, stem: str, size: tuple[int, int]) -> list[str]:
    base = f"{server.prefix}{stem}{server.suffix}"
    return [f"{base}/info.json"] + [f"{base}/{tile}" for tile in zoom_session(*size)]


def naive_session(path: Path, size: tuple[int, int]) -> list[float]:
    latencies = []
    for tile in zoom_session(*size):
        start = time.perf_counter()
        naive_tile(str(path), tile)
        latencies.append(time.perf_counter() - start)
    return latencies


def fresh_names(folder: Path, images: Sequence[Path], tag: str) -> list[Path]:
    """New names (hard links) for `images` in `folder`: cold for every cache a server has."""
    names = []
    for image in images:
        name = folder / f"{tag}-{image.name}"
        os.link(image, name)
        names.append(name)
    return names


@dataclass
class _Runs:
    totals: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)  # per client, to its first tiles
    sessions: list[list[str]] = field(default_factory=list)

    def add(self, total: float, per_client: list[list[float]]) -> None:
        self.totals.append(total)
        for latencies in per_client:
            self.latencies += latencies
            self.firsts.append(sum(latencies[: FIRST_TILES + 1]))

    @property
    def total(self) -> float:
        return statistics.median(self.totals)

    @property
    def first(self) -> float:
        return statistics.median(self.firsts)


def measure_sessions(
    ours: tuple[Server, Path, list[Path]],
    peer: tuple[Server, Path, list[Path]] | None,
    size: tuple[int, int],
    repeats: int,
    naive: bool = True,
) -> tuple[list[Row], list[list[str]]]:
    """Cold sessions with 1 client, then 4 at once on 4 images (each `repeats` times).

    `ours` and `peer` are (server, folder it serves, images in that folder).
    Returns the rows and the paths of this server's last 4-client sessions.
    """
    rows: list[Row] = []
    last: list[list[str]] = []
    for clients in (1, 4):
        runs = {"ours": _Runs(), "peer": _Runs(), "naive": _Runs()}
        for n in range(repeats):
            tag = f"c{clients}r{n}"
            servers = {"ours": ours} if peer is None else {"ours": ours, "peer": peer}
            if n % 2:  # alternate who goes first: the second may meet a warmer machine
                servers = dict(reversed(servers.items()))
            for kind, (server, folder, images) in servers.items():
                names = fresh_names(folder, images[:clients], tag)
                time.sleep(PAUSE_SECONDS)
                sessions = [session_paths(server, name.stem, size) for name in names]
                total, per_client = concurrently(
                    [functools.partial(client_run, server.port, paths) for paths in sessions]
                )
                runs[kind].add(total, per_client)
                runs[kind].sessions = sessions
            if naive:
                _, folder, images = ours
                names = fresh_names(folder, images[:clients], f"naive{tag}")
                total, per_client = concurrently(
                    [functools.partial(naive_session, name, size) for name in names]
                )
                runs["naive"].add(total, per_client)
        mine = runs["ours"]
        count = sum(map(len, mine.sessions))
        last = mine.sessions
        name = f"deep zoom, {clients} client{'s' if clients > 1 else ''}"
        versus, versus_name = "", ""
        if peer is not None:
            theirs = runs["peer"]
            spread = ", ".join(
                f"{a / b:.2f}" for a, b in zip(mine.totals, theirs.totals, strict=True)
            )
            versus, versus_name = f"{mine.total / theirs.total:.2f}x", f"IIPImage ({spread})"
        rows.append(Row(f"{name}, cold (median)", count, mine.total, mine.latencies,
                        versus_name, versus, first=mine.first))  # fmt: skip
        if peer is not None:
            theirs = runs["peer"]
            rows.append(Row(f"  peer: IIPImage + nginx on PTIF, {clients} at once", count,
                            theirs.total, theirs.latencies, first=theirs.first))  # fmt: skip
        if naive:
            floor = runs["naive"]
            rows.append(Row(f"  floor: naive Pillow, {clients} at once", count - clients,
                            floor.total, floor.latencies,
                            "", f"ours {floor.total / mine.total:.1f}x faster"))  # fmt: skip
        total, per_client = concurrently(
            [functools.partial(client_run, ours[0].port, paths) for paths in mine.sessions]
        )
        rows.append(Row(f"{name}, warm", count, total, [t for c in per_client for t in c]))
    return rows, last
