"""Benchmark: cached `/cover` answers against a bare Tornado handler, measured in one run.

    python bench/covers.py [--seconds 10] [--connections 50]

Starts fake providers on loopback, a bare Tornado handler answering the same
body from memory, and the server twice (SQLite store, then a private
`redis-server`), warms the cache with one request (4 ids, gb and ol, every id
found), then runs `wrk` against each. The bare handler is measured before and
after the servers and its mean is the reference. Needs `wrk` and `redis-server`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.covers.fake_provider import FakeProviders, config_yaml, fake_in_thread  # noqa: E402
from tests.live import free_port  # noqa: E402

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
def running(args: list[str], url: str, cwd: Path, log: Path) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_SERVER_")}
    env["PYTHONPATH"] = str(REPO)
    with log.open("wb") as output:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(url, process)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    """Requests per second and the 99th percentile latency."""
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    p99 = re.search(r"^\s+99%\s+(\S+)", result.stdout, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if rate is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{result.stdout}")
    return float(rate.group(1)), p99.group(1) if p99 else "?"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def serve_covers(
    fake: FakeProviders, workdir: Path, name: str, store: str
) -> tuple[list[str], str, Path]:
    port = free_port()
    folder = workdir / name
    (folder / "data" / "sources" / "sample").mkdir(parents=True)
    config = json.loads(config_yaml(fake, store=store))
    config.update(http_port=port, size_pool_size=1, image_pool_size=1)
    (folder / "config.yml").write_text(json.dumps(config))
    command = [sys.executable, "-m", "iiif_server", "serve", "--config", "config.yml"]
    return command, f"http://127.0.0.1:{port}", folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    options = parser.parse_args()
    for tool in ("wrk", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian packages wrk, redis-server)", file=sys.stderr)
            return 1
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as temp, fake_in_thread() as fake:
        workdir = Path(temp)
        for number, isbn in enumerate(IDS):
            fake.gb[isbn] = f"vol{number}"
            fake.ol[isbn] = 1000 + number

        bare_port = free_port()
        bare_url = f"http://127.0.0.1:{bare_port}"
        body_file = workdir / "body.json"

        def measure_bare(label: str) -> None:
            command = [sys.executable, "-c", BARE_HANDLER, str(bare_port), str(body_file)]
            with running(command, bare_url + "/cover", workdir, workdir / "bare.log"):
                rows.append((label, *wrk(bare_url + QUERY, options.seconds, options.connections)))

        with redis_server(workdir) as redis_url:
            servers = [("sqlite", "sqlite"), ("redis", redis_url)]
            for index, (name, store) in enumerate(servers):
                command, url, folder = serve_covers(fake, workdir, name, store)
                with running(command, url + "/health", folder, folder / "server.log"):
                    get(url + QUERY + "&all")  # asks the providers, waiting for both
                    body = get(url + QUERY)
                    assert len(json.loads(body)) == len(IDS), body
                    asked = len(fake.requests)
                    if index == 0:
                        body_file.write_bytes(body)
                        measure_bare("bare Tornado handler (before)")
                    rows.append(
                        (
                            f"/cover, {name} store",
                            *wrk(url + QUERY, options.seconds, options.connections),
                        )
                    )
                    if len(fake.requests) != asked:
                        raise RuntimeError("the providers were asked during the measurement")
            measure_bare("bare Tornado handler (after)")

    bare = (rows[0][1] + rows[-1][1]) / 2
    print(f"\n{options.connections} connections, {options.seconds} s each, 4 cached ids, gb+ol\n")
    print(f"| {'server':<32} | {'req/s':>8} | {'p99':>8} | {'ratio':>5} |")
    print(f"|{'-' * 34}|{'-' * 10}:|{'-' * 10}:|{'-' * 7}:|")
    for label, rate, p99 in rows:
        print(f"| {label:<32} | {rate:>8,.0f} | {p99:>8} | {rate / bare:>5.2f} |")
    print("\nratio: against the mean of the two bare runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
