"""The measured peer: IIPImage serving pyramidal TIFFs of the same pictures, behind nginx.

As the field deploys it: Debian's `iipimage-server` (the FastCGI binary
`iipsrv.fcgi`, one process per core as a FastCGI spawner would run it)
behind Debian's nginx on loopback, the pyramids made by Debian's
`libvips-tools` (`vips tiffsave ... --tile --pyramid --compression jpeg -Q 90
--tile-width 512 --tile-height 512`). The packages are installed with apt-get
when missing: they are for this benchmark only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.live import stop

IIPSRV = Path("/usr/lib/iipimage-server/iipsrv.fcgi")
PACKAGES: dict[str, Path | str] = {
    "iipimage-server": IIPSRV,
    "nginx": "nginx",
    "libvips-tools": "vips",
}

NGINX_CONFIG = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    fastcgi_temp_path {work}/fastcgi;
    proxy_temp_path {work}/proxy;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream iipsrv {{ {servers} }}
    server {{
        listen 127.0.0.1:{port};
        location /iiif/ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_pass iipsrv;
        }}
    }}
}}
"""


def ensure_installed() -> None:
    """apt-get install what is missing (needs root and a reachable Debian mirror)."""
    missing = [
        package
        for package, tool in PACKAGES.items()
        if (not Path(tool).exists() if isinstance(tool, Path) else shutil.which(tool) is None)
    ]
    if missing:
        print(f"installing {' '.join(missing)} for the peer (apt-get)", file=sys.stderr)
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=environment)


def pyramid(jpeg: Path, folder: Path) -> Path:
    """`folder/{stem}.tif`, the pyramidal tiled TIFF of `jpeg`, made once and reused."""
    target = folder / f"{jpeg.stem}.tif"
    if not target.exists() or target.stat().st_mtime < jpeg.stat().st_mtime:
        temporary = folder / f"{jpeg.stem}.tmp.tif"
        subprocess.run(
            ["vips", "tiffsave", str(jpeg), str(temporary), "--tile", "--pyramid",
             "--compression", "jpeg", "-Q", "90", "--tile-width", "512", "--tile-height", "512"],
            check=True,
        )  # fmt: skip
        temporary.replace(target)
    return target


@contextmanager
def iipimage(prefix: Path, work: Path, port: int, fastcgi_ports: list[int]) -> Iterator[None]:
    """nginx on `port` in front of one iipsrv per port of `fastcgi_ports`; files under `prefix`."""
    work.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "FILESYSTEM_PREFIX": f"{prefix}/",
        "URI_MAP": "iiif=>IIIF",
        "VERBOSITY": "0",
        "MAX_IMAGE_CACHE_SIZE": "10",
    }
    servers = " ".join(f"server 127.0.0.1:{p};" for p in fastcgi_ports)
    config = work / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(work=work, servers=servers, port=port))
    with ExitStack() as stack:
        for fastcgi_port in fastcgi_ports:
            process = subprocess.Popen(
                [str(IIPSRV), "--bind", f"127.0.0.1:{fastcgi_port}"],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(stop, process)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(config), "-p", str(work)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(stop, nginx)
        time.sleep(0.5)  # iipsrv has no health route; the first real request waits anyway
        if nginx.poll() is not None:
            raise RuntimeError(f"nginx did not start: {(work / 'nginx-error.log').read_text()}")
        yield
