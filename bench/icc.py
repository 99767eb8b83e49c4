"""What an embedded ICC profile costs: `python bench/icc.py` from the repository root.

The same 6000x4000 photo-like JPEG, untagged and tagged with an Adobe RGB
profile, rendered in this process as a cold image worker would: the tiles of
a deep-zoom session (the first decodes the source, the rest are cut from
memory) and a cold `!512,512` thumbnail. Untagged and tagged runs alternate;
each figure is the median of `--repeats` runs, each with a fresh worker.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.images import ensure_jpeg  # noqa: E402
from bench.session import zoom_session  # noqa: E402
from iiif_server.iiif.params import Limits  # noqa: E402
from iiif_server.iiif.request import parse_image_request  # noqa: E402
from iiif_server.imaging import render  # noqa: E402
from iiif_server.imaging.probe import probe  # noqa: E402
from tests.imaging.icc_profiles import rgb_profile  # noqa: E402

SIZE = (6000, 4000)
MAX_PIXELS = 400_000_000
LIMITS = Limits(10000, 10000, 100_000_000, True)


def tagged_copy(source: Path) -> Path:
    """The same JPEG bytes with an Adobe RGB profile in an APP2 segment after SOI."""
    path = source.with_name(source.stem + "-adobe.jpg")
    if not path.exists():
        profile = rgb_profile()
        body = b"ICC_PROFILE\0" + bytes((1, 1)) + profile
        segment = b"\xff\xe2" + (len(body) + 2).to_bytes(2, "big") + body
        data = source.read_bytes()
        path.write_bytes(data[:2] + segment + data[2:])
    return path


def cold_run(path: Path, tiles: Sequence[str], thumbnail: bool) -> float:
    """Seconds for the whole session (or the one thumbnail) in a fresh worker."""
    render.configure_worker(1 << 30, MAX_PIXELS)
    info = probe(str(path), MAX_PIXELS)
    asks = ["full/!512,512/0/default.jpg"] if thumbnail else tiles
    start = time.perf_counter()
    for ask in asks:
        region, size, rotation, quality_format = ask.split("/")
        request = parse_image_request(3, region, size, rotation, quality_format, info, LIMITS)
        # As after an info.json: the session's first request decodes the whole source.
        render.render(str(path), "v1", info, request, render.EncodeOptions(), not thumbnail)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    plain = ensure_jpeg(REPO / "bench" / ".images", "icc-photo", SIZE, seed=11)
    tagged = tagged_copy(plain)
    assert not probe(str(plain), MAX_PIXELS).icc_profile
    assert probe(str(tagged), MAX_PIXELS).icc_profile
    tiles = zoom_session(*SIZE)
    print(f"{'measurement':44} {'untagged s':>11} {'Adobe RGB s':>12} {'extra s':>8}")
    for name, thumbnail in ((f"cold deep-zoom session ({len(tiles)} tiles)", False),
                            ("cold thumbnail !512,512", True)):  # fmt: skip
        times: dict[Path, list[float]] = {plain: [], tagged: []}
        for _ in range(args.repeats):
            for path in (plain, tagged):
                times[path].append(cold_run(path, tiles, thumbnail))
        ours, theirs = statistics.median(times[plain]), statistics.median(times[tagged])
        print(f"{name:44} {ours:11.2f} {theirs:12.2f} {theirs - ours:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
