"""Waiting for the other front processes to apply a purge."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from iiif_server.purge.fronts import Confirmation, FrontRegistry


def test_the_wait_ends_when_every_other_live_front_is_there(tmp_path: Path) -> None:
    me = FrontRegistry(tmp_path, "me")
    other = FrontRegistry(tmp_path, "other")  # same pid here: told apart by origin
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / f"{dead.stdout.strip()}-gone").write_text("0 0")
    me.report((1, 100))
    other.report((1, 50))

    async def run() -> tuple[Confirmation, Confirmation]:
        early = await me.wait((1, 80), timeout=0.05)
        later = asyncio.ensure_future(me.wait((1, 80), timeout=10))
        await asyncio.sleep(0.05)
        other.report((2, 0))  # moved on to the next segment
        return early, await later

    early, later = asyncio.run(run())
    assert early == Confirmation(confirmed=0, unconfirmed=1)
    assert later == Confirmation(confirmed=1, unconfirmed=0)
    assert not (tmp_path / f"{dead.stdout.strip()}-gone").exists()  # a crashed front
    other.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{os.getpid()}-me"]
