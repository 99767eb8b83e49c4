"""Benchmark: cached `/cover` answers against a bare Tornado handler, measured in one run.

    python bench/covers.py [--seconds 10] [--connections 50]

Starts fake providers on loopback, a bare Tornado handler answering the same
body from memory, and the server with the SQLite store, with a private
`redis-server` as its store, and with the SQLite store and the access log on;
warms each cache with one request (4 ids, gb and ol, every id found), then runs
`wrk` against each. Each server is measured between two runs of the bare
handler, whose mean is its reference. Needs `wrk` and `redis-server`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import wait_for_fronts  # noqa: E402
from iiif_server.config import auto_processes  # noqa: E402
from tests.covers.fake_provider import FakeProviders, config_yaml, fake_in_thread  # noqa: E402
from tests.live import free_port, stop  # noqa: E402

IDS = ["9780415480635", "9782266111560", "9780306406157", "9780804429573"]
QUERY = f"/cover?id={','.join(IDS)}&provider=gb,ol"

BARE_HANDLER = """
import sys, tornado.ioloop, tornado.web
body = open(sys.argv[2], "rb").read()
class Bare(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)
tornado.web.Application([(r"/cover", Bare)]).listen(int(sys.argv[1]), "127.0.0.1")
tornado.ioloop.IOLoop.current().start()
"""


def wait_for(url: str, process: subprocess.Popen[bytes], deadline: float = 60) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def running(args: list[str], url: str, cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_SERVER_")}
    env["PYTHONPATH"] = str(REPO)
    with log.open("wb") as output:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(url, process)
        yield process
    finally:
        stop(process, timeout=30)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":  # fmt: skip
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of a process and its children (fronts, workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def wrk(url: str, pid: int, seconds: int, connections: int) -> tuple[float, str, float]:
    """Requests per second, the 99th percentile latency, and server CPU µs per request."""
    cpu_before = cpu_seconds(pid)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    cpu = cpu_seconds(pid) - cpu_before
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    total = re.search(r"(\d+) requests in", result.stdout)
    p99 = re.search(r"^\s+99%\s+(\S+)", result.stdout, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if rate is None or total is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{result.stdout}")
    return float(rate.group(1)), p99.group(1) if p99 else "?", cpu / int(total.group(1)) * 1e6


def ab(url: str, keep_alive: bool, requests: int, connections: int) -> float:
    """Requests per second of `ab -n requests -c connections` (with `-k`: keep-alive)."""
    command = ["ab", "-q", "-n", str(requests), "-c", str(connections)]
    result = subprocess.run(
        [*command, *(["-k"] if keep_alive else []), url], capture_output=True, text=True, check=True
    )
    rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    if rate is None or (failed and int(failed.group(1))) or non_2xx:
        raise RuntimeError(f"ab failed or saw errors:\n{result.stdout}")
    return float(rate.group(1))


def ab_table(urls: dict[str, str], repeats: int, requests: int, connections: int) -> None:
    """The test Coce publishes: `ab -n 10000 -c 50`, without and with keep-alive.

    The server on its shipped defaults is measured between two runs of the bare
    handler, `repeats` times; each ratio is against the mean of its two neighbours.
    """
    print(f"\n`ab -n {requests} -c {connections}`, 4 cached ids, {repeats} runs each\n")
    print("| connection | bare Tornado req/s | shipped defaults req/s | ratio (spread) |")
    print("|---|---:|---:|---:|")
    for keep_alive in (False, True):
        bares = [ab(urls["bare"] + QUERY, keep_alive, requests, connections)]
        ours, ratios = [], []
        for _ in range(repeats):
            ours.append(ab(urls["defaults"] + QUERY, keep_alive, requests, connections))
            bares.append(ab(urls["bare"] + QUERY, keep_alive, requests, connections))
            ratios.append(ours[-1] / ((bares[-2] + bares[-1]) / 2))
        spread = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"| {'keep-alive (-k)' if keep_alive else 'new connection each'} "
            f"| {statistics.median(bares):,.0f} | {statistics.median(ours):,.0f} "
            f"| {statistics.median(ratios):.2f} ({spread}) |"
        )


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def serve_covers(
    fake: FakeProviders, workdir: Path, name: str, store: str, log_level: str | None
) -> tuple[list[str], str, Path]:
    """A server on `store`; with `log_level` None, on the shipped defaults."""
    port = free_port()
    folder = workdir / name
    (folder / "data" / "sources" / "sample").mkdir(parents=True)
    config = json.loads(config_yaml(fake, store=store))
    config.update(http_port=port)
    if log_level is not None:  # one front, like the bare handler
        config.update(size_pool_size=1, image_pool_size=1, log_level=log_level, processes=1)
    (folder / "config.yml").write_text(json.dumps(config))
    command = [sys.executable, "-m", "iiif_server", "serve", "--config", "config.yml"]
    return command, f"http://127.0.0.1:{port}", folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--ab-requests", type=int, default=10000)
    parser.add_argument("--ab-repeats", type=int, default=3)
    parser.add_argument("--ab-only", action="store_true", help="only the ab test")
    options = parser.parse_args()
    for tool in ("wrk", "ab", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: wrk apache2-utils redis-server)", file=sys.stderr)
            return 1
    # Like the bare handler, the servers measured write no access log (log_level
    # warning); one more run shows what the access log (log_level info) costs.
    servers = {
        "sqlite store": ("sqlite", "warning"),
        "redis store": ("redis", "warning"),
        "sqlite store, access log on": ("sqlite", "info"),
        "defaults": ("sqlite", None),  # shipped defaults: the ab test
    }
    results: dict[str, list[tuple[float, str, float]]] = {name: [] for name in ("bare", *servers)}
    with tempfile.TemporaryDirectory() as temp, fake_in_thread() as fake, ExitStack() as stack:
        workdir = Path(temp)
        for number, isbn in enumerate(IDS):
            fake.gb[isbn] = f"vol{number}"
            fake.ol[isbn] = 1000 + number
        redis_url = stack.enter_context(redis_server(workdir))
        urls: dict[str, str] = {}
        pids: dict[str, int] = {}
        for index, (name, (store, log_level)) in enumerate(servers.items()):
            command, url, folder = serve_covers(
                fake, workdir, f"server{index}", redis_url if store == "redis" else store, log_level
            )
            log = folder / "server.log"
            pids[name] = stack.enter_context(running(command, url + "/health", folder, log)).pid
            wait_for_fronts(int(url.rsplit(":", 1)[1]), 1 if log_level else auto_processes())
            get(url + QUERY + "&all")  # asks the providers, waiting for both
            body = get(url + QUERY)
            assert len(json.loads(body)) == len(IDS), body
            urls[name] = url
        body_file = workdir / "body.json"
        body_file.write_bytes(body)
        bare_port = free_port()
        urls["bare"] = f"http://127.0.0.1:{bare_port}"
        bare = [sys.executable, "-c", BARE_HANDLER, str(bare_port), str(body_file)]
        log = workdir / "bare.log"
        pids["bare"] = stack.enter_context(running(bare, urls["bare"] + "/cover", workdir, log)).pid

        asked = len(fake.requests)
        # Each server is measured between two runs of the bare handler: the machine's
        # load drifts, and the ratio should not.
        steps = ("bare", *(step for server in servers for step in (server, "bare")))
        for name in () if options.ab_only else steps:
            result = wrk(urls[name] + QUERY, pids[name], options.seconds, options.connections)
            results[name].append(result)
        ab_table(urls, options.ab_repeats, options.ab_requests, options.connections)
        if len(fake.requests) != asked:
            raise RuntimeError("the providers were asked during the measurement")
    if not options.ab_only:
        wrk_table(results, servers, options.seconds, options.connections)
    return 0


def wrk_table(
    results: dict[str, list[tuple[float, str, float]]],
    servers: dict[str, tuple[str, str | None]],
    seconds: int,
    connections: int,
) -> None:
    bares = results["bare"]
    print(f"\n{connections} connections, {seconds} s each, 4 cached ids, gb+ol (wrk)\n")
    print("| server | req/s | p99 | CPU µs/request | ratio (req/s) | ratio (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for index, (rate, p99, cpu) in enumerate(bares):
        print(f"| bare Tornado handler, run {index + 1} | {rate:,.0f} | {p99} | {cpu:.0f} | | |")
    for index, name in enumerate(servers):
        rate, p99, cpu = results[name][0]
        reference_rate = (bares[index][0] + bares[index + 1][0]) / 2
        reference_cpu = (bares[index][2] + bares[index + 1][2]) / 2
        print(
            f"| /cover, {name} | {rate:,.0f} | {p99} | {cpu:.0f} "
            f"| {rate / reference_rate:.2f} | {reference_cpu / cpu:.2f} |"
        )
    print(
        "\nratios against the mean of the bare runs just before and after; the CPU ratio"
        "\n(bare CPU per request / the server's) moves less with other load on the machine"
    )


if __name__ == "__main__":
    sys.exit(main())
