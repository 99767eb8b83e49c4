"""The shipped multi-node topology on loopback, without Docker: SeaweedFS, redis-server,
three `iiif-server` nodes (tests/live.py) and Debian's nginx with docker/cluster/nginx.conf,
its ports and upstreams rewritten. For the cluster tests and bench/cluster.py.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import LiveServer, free_port, live_server, stop
from tests.s3store import ACCESS_KEY_ID, BUCKET, REGION, SECRET_ACCESS_KEY, S3Store, s3_store

REPO = Path(__file__).resolve().parent.parent.parent
NGINX_CONF = REPO / "docker" / "cluster" / "nginx.conf"
ADMIN_TOKEN = "cluster-test-admin-token"
SHARED_PREFIX = "derivatives/"


def get(url: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@contextmanager
def redis_server(workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server: apt-get install redis-server")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            [binary.replace("redis-server", "redis-cli"), "-p", str(port), "ping"],
            capture_output=True, check=False,
        ).stdout.strip() != b"PONG":  # fmt: skip
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not come up")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def nginx_conf(template: str, port: int, nodes: list[int], workdir: Path) -> str:
    """The shipped config on loopback ports, its files in `workdir`."""
    upstreams = "".join(
        f"        server 127.0.0.1:{node} max_fails=1 fail_timeout=10s;\n" for node in nodes
    )
    text = template.replace("/tmp/", f"{workdir}/")  # first: workdir may be in /tmp
    text = re.sub(r"( *server node\d:4040[^\n]*\n)+", upstreams, text)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("/dev/stderr", str(workdir / "error.log"))
    return text.replace("worker_processes auto;", "worker_processes 1;")


@contextmanager
def nginx(workdir: Path, nodes: list[int]) -> Iterator[str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("no nginx: apt-get install nginx")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_conf(NGINX_CONF.read_text(), port, nodes, workdir))
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(url + "/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log = workdir / "error.log"
                    raise RuntimeError(f"nginx did not come up: {log.read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        stop(process, signal.SIGQUIT)  # nginx: graceful


@dataclass
class Cluster:
    url: str  # nginx
    nodes: list[LiveServer]
    store: S3Store
    redis: subprocess.Popen[bytes]
    sources: Path
    stack: ExitStack = field(repr=False)

    def health(self, node: LiveServer) -> dict:  # type: ignore[type-arg]
        return json.loads(node.get("/health")[2])  # type: ignore[no-any-return]

    def renders(self, node: LiveServer) -> float:
        text = node.get("/metrics")[2].decode()
        match = re.search(r"^iiif_renders_total ([0-9.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def shared_keys(self) -> list[str]:
        listed = self.store.client().list_objects_v2(Bucket=BUCKET, Prefix=SHARED_PREFIX)
        return [entry["Key"] for entry in listed.get("Contents", [])]


def node_env(sources: Path, store: S3Store, redis_url: str, cache: Path) -> dict[str, str]:
    shared = {
        "url": f"s3://{BUCKET}/{SHARED_PREFIX}",
        "endpoint_url": store.endpoint_url,
        "region": REGION,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
    }
    types = {
        "sample": {"source": "disk"},
        "museum": store.type_settings("museum/"),
    }
    return {
        "IIIF_SERVER_SOURCE_PATH": str(sources),
        "IIIF_SERVER_CACHE_PATH": str(cache),
        "IIIF_SERVER_TYPES": json.dumps(types),
        "IIIF_SERVER_DEFAULT_TYPE": "sample",
        "IIIF_SERVER_SHARED_CACHE": json.dumps(shared),
        "IIIF_SERVER_SHARED_INFO": redis_url,
        "IIIF_SERVER_ADMIN_TOKEN": ADMIN_TOKEN,
        "IIIF_SERVER_PROCESSES": "1",
        "IIIF_SERVER_IMAGE_POOL_SIZE": "1",
        "IIIF_SERVER_SIZE_POOL_SIZE": "1",
    }


@contextmanager
def cluster(workdir: Path, sources: Path, nodes: int = 3) -> Iterator[Cluster]:
    """The whole topology; `sources` holds `sample/` (disk) images.

    Every node gets its own copy of them (mtimes kept), as machines with their own
    disks would, so its downloads of objects are its own too.
    """
    with ExitStack() as stack:
        store = stack.enter_context(s3_store(workdir / "s3"))
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        redis_port = free_port()
        redis = stack.enter_context(redis_server(redis_dir, redis_port))
        servers = []
        for n in range(nodes):
            home = workdir / f"node{n + 1}"
            home.mkdir()
            own = shutil.copytree(sources, home / "sources")
            env = node_env(own, store, f"redis://127.0.0.1:{redis_port}/0", home / "cache")
            servers.append(stack.enter_context(live_server(home, env)))
        url = stack.enter_context(nginx(workdir / "nginx", [s.port for s in servers]))
        yield Cluster(url, servers, store, redis, sources, stack)
