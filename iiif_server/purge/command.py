"""`iiif-server purge IDENTIFIER... | --type T | --all`: ask the running server to purge.

It calls the server's admin API (the `host` and `http_port` of the same config,
or `--url`) with the config's `admin_token` (`IIIF_SERVER_ADMIN_TOKEN` works
too, like every key), so the purge reaches every front process of that server.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from ..config import Settings

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # listening everywhere: ask loopback


def add_command(commands: Any, common: argparse.ArgumentParser) -> None:
    purge = commands.add_parser(
        "purge", parents=[common], help="purge identifiers, a type or everything from a server"
    )
    purge.add_argument("identifiers", nargs="*", metavar="IDENTIFIER")
    what = purge.add_mutually_exclusive_group()
    what.add_argument("--type", dest="purge_type", metavar="TYPE", help="every identifier of TYPE")
    what.add_argument("--all", dest="purge_all", action="store_true", help="everything")
    purge.add_argument("--url", help="the server's root URL (default: from host and http_port)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    chosen = sum((bool(args.identifiers), args.purge_type is not None, args.purge_all))
    if chosen != 1:
        print("iiif-server purge: name identifiers, --type TYPE or --all", file=sys.stderr)
        return 2
    if settings.admin_token is None:
        print(
            "iiif-server purge: no admin_token configured (the admin API is off)", file=sys.stderr
        )
        return 2
    body: dict[str, Any] = (
        {"all": True}
        if args.purge_all
        else {"type": args.purge_type}
        if args.purge_type is not None
        else {"identifiers": args.identifiers}
    )
    host = "127.0.0.1" if settings.host in _WILDCARD_HOSTS else settings.host
    root = (args.url or f"http://{host}:{settings.http_port}").rstrip("/")
    request = urllib.request.Request(
        root + "/admin/purge",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {settings.admin_token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(
            f"iiif-server purge: {error.read().decode(errors='replace').strip()}", file=sys.stderr
        )
        return 1
    except OSError as error:
        print(f"iiif-server purge: cannot reach {root}: {error}", file=sys.stderr)
        return 1
    others = answer["other_processes"]
    print(
        f"purged {', '.join(answer['purged'])}: {answer['derivatives']} derivative(s), "
        f"{answer['decoded']} decoded image(s); applied by {others['confirmed']} other "
        "front process(es)"
    )
    if others["unconfirmed"]:
        print(
            f"iiif-server purge: {others['unconfirmed']} front process(es) had not applied it "
            "yet (busy); they will",
            file=sys.stderr,
        )
    return 0
