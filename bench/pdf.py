"""What a PDF page costs: `python bench/pdf.py` from the repository root.

A scanned-book page (a 2550x3300 photo-like JPEG, US letter at 300 dpi)
as a one-page PDF and as the JPEG itself, rendered in this process as a cold
image worker would: the probe, a cold `!200,200` thumbnail (reduced
render), the first tile of a zoom session (the whole page rendered into the
decoded cache) and a warm tile. Each figure is the median of `--repeats`
runs, each with a fresh worker; the JPEG is the floor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.images import photo_like  # noqa: E402
from iiif_server.iiif.params import Limits  # noqa: E402
from iiif_server.iiif.request import parse_image_request  # noqa: E402
from iiif_server.imaging import render  # noqa: E402
from iiif_server.imaging.probe import probe  # noqa: E402

MAX_PIXELS = 400_000_000
LIMITS = Limits(10000, 10000, 100_000_000, True)
FOLDER = REPO / "bench" / ".images"


def sources() -> tuple[Path, Path]:
    jpeg, document = FOLDER / "page-300dpi.jpg", FOLDER / "page-300dpi.pdf"
    if not document.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        page = photo_like(2550, 3300, seed=7)
        page.save(jpeg, "JPEG", quality=90)
        page.save(document, "PDF", resolution=300, quality=90)
    return jpeg, document


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run(path: Path, dpi: int) -> dict[str, float]:
    render.configure_worker(1 << 30, MAX_PIXELS)
    times = {"probe": timed(lambda: probe(str(path), MAX_PIXELS, pdf_dpi=dpi))}
    info = probe(str(path), MAX_PIXELS, pdf_dpi=dpi)

    def ask(region: str, size: str, deep_zoom: bool) -> None:
        request = parse_image_request(3, region, size, "0", "default.jpg", info, LIMITS)
        render.render(str(path), "v1", info, request, render.EncodeOptions(), deep_zoom)

    times["cold thumbnail !200,200"] = timed(lambda: ask("full", "!200,200", False))
    render.configure_worker(1 << 30, MAX_PIXELS)
    times["first tile of a session"] = timed(lambda: ask("0,0,512,512", "512,512", True))
    times["next tile (warm)"] = timed(lambda: ask("512,512,512,512", "512,512", True))
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    jpeg, document = sources()
    cases = {"JPEG 2550x3300 (floor)": (jpeg, 150), "PDF page at 150 dpi": (document, 150),
             "PDF page at 300 dpi": (document, 300)}  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (path, dpi) in cases.items():
            results[name].append(run(path, dpi))
    steps = list(results[next(iter(cases))][0])
    print(f"{'ms (median)':26}" + "".join(f"{step:>26}" for step in steps))
    for name, runs in results.items():
        medians = [statistics.median(r[step] for r in runs) * 1000 for step in steps]
        print(f"{name:26}" + "".join(f"{value:26.1f}" for value in medians))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
