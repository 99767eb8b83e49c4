"""`python -m iiif_server.lookup.build LISTING INDEX`: a downloaded listing becomes an index file.

Runs in a short-lived child process of the syncing server, so the parse
(seconds of CPU for two million ids) never stalls the event loop that
answers queries, and its memory is returned the moment it exits. It prints
one JSON line: the counts, or `{"error": ...}` with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .index import IndexFull, IndexWriter
from .listing import ListingCounts, ListingError, read_listing
from .state import replace_atomically, temporary_path


def build(listing: Path, target: Path) -> ListingCounts:
    """Parse `listing` into `target`, replaced atomically; on any error `target` is untouched."""
    counts = ListingCounts()
    writer = IndexWriter(temporary_path(target))
    try:
        with listing.open("rb") as stream:
            for identifier, urls in read_listing(stream, counts):
                writer.add(identifier, urls)
        counts.ids = writer.finish(asdict(counts))
    except BaseException:
        writer.abort()
        raise
    replace_atomically(writer.path, target)
    return counts


def main(argv: list[str]) -> int:
    os.nice(10)  # on a busy machine the front processes' queries come first
    try:
        counts = build(Path(argv[0]), Path(argv[1]))
    except (ListingError, IndexFull) as error:
        print(json.dumps({"error": str(error)}))
        return 1
    except OSError as error:
        print(json.dumps({"error": f"cannot write the index: {error}"}))
        return 1
    print(json.dumps(asdict(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
