"""`iiif-server lookup sync` (one sync now, into the on-disk copy) and `lookup get SCHEME MODE ID`.

Both work on the files a running server maps, so a sync here is answered
by the server within a second; the machine's sync lock keeps it from
running at the same time as the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..errors import ServerError
from .config import LookupSettings
from .index import Index, urls_of
from .leader import sync_locked
from .listings import Listings
from .state import SchemeStatus, index_path

EXAMPLES = 5  # changed ids printed by name, at most


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `lookup sync` and `lookup get` to the CLI's subcommands."""
    lookup = commands.add_parser("lookup", help="the lookup index: sync, get")
    actions = lookup.add_subparsers(dest="lookup_command", required=True)
    actions.add_parser("sync", parents=[common], help="sync every scheme now, print what changed")
    get = actions.add_parser("get", parents=[common], help="print where SCHEME MODE ID redirects")
    get.add_argument("scheme")
    get.add_argument("mode")
    get.add_argument("id")


def run(args: argparse.Namespace, settings: LookupSettings, cache_path: Path) -> int:
    if not settings.enabled:
        print("iiif-server: lookup is off (no lookup.listing_url)", file=sys.stderr)
        return 2
    folder = cache_path / "lookup"
    if args.lookup_command == "sync":
        return _sync(settings, folder)
    listings = Listings(settings, folder)
    listings.refresh()
    try:
        target = listings.resolve(args.scheme, args.mode, args.id)
    except ServerError as error:
        print(f"iiif-server: {error.status}: {error}", file=sys.stderr)
        return 1
    finally:
        listings.close()
    if target is None:
        print(f"iiif-server: 404: no {args.mode} URL for {args.scheme} {args.id}", file=sys.stderr)
        return 1
    print(target)
    return 0


def _sync(settings: LookupSettings, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # The old files stay readable through their maps after a sync renames over them.
    before = {scheme: _open(folder, scheme) for scheme in settings.schemes}
    try:
        results = asyncio.run(sync_locked(settings, folder, list(settings.schemes)))
        failed = False
        for scheme, (outcome, status) in results.items():
            failed |= outcome == "failed"
            after = _open(folder, scheme)
            try:
                print(_report(scheme, outcome, status, before[scheme], after))
            finally:
                if after is not None:
                    after.close()
    finally:
        for index in before.values():
            if index is not None:
                index.close()
    return 1 if failed else 0


def _open(folder: Path, scheme: str) -> Index | None:
    path = index_path(folder, scheme)
    return Index(path) if path.exists() else None


def _report(
    scheme: str, outcome: str, status: SchemeStatus, old: Index | None, new: Index | None
) -> str:
    size = f"{new.ids} ids" if new is not None else "no listing yet"
    if outcome == "failed":
        return f"{scheme}: failed: {status.last_error} (still answering: {size})"
    if outcome == "unchanged" or new is None:
        return f"{scheme}: unchanged ({size})"
    # Streamed through both indexes, so that two million ids need no memory.
    differences: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    counts = dict.fromkeys(differences, 0)
    # Compared as stored: only ids whose bytes differ are parsed (the order of modes may).
    for key, part in new.records():
        previous = old.stored(key) if old is not None else None
        if previous is None:
            label: str | None = "added"
        elif previous != part and urls_of(previous) != urls_of(part):
            label = "changed"
        else:
            label = None
        if label is not None:
            counts[label] += 1
            if len(differences[label]) < EXAMPLES:
                differences[label].append(f"  {label} {key.decode()}: {urls_of(part)}")
    for key, part in old.records() if old is not None else ():
        if new.stored(key) is None:
            counts["removed"] += 1
            if len(differences["removed"]) < EXAMPLES:
                differences["removed"].append(f"  removed {key.decode()}: {urls_of(part)}")
    summary = ", ".join(f"{count} {label}" for label, count in counts.items())
    dropped = f"{status.dropped_urls} URLs and {status.dropped_ids} ids dropped"
    lines = [f"{scheme}: changed: {size}: {summary}; {dropped}"]
    return "\n".join(lines + [line for examples in differences.values() for line in examples])
