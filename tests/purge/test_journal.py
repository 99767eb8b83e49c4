"""The purge journal: lines of other processes arrive once, in order, across rotations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from iiif_server.purge import journal as journal_module
from iiif_server.purge.journal import PurgeJournal
from iiif_server.purge.message import Purge


def test_a_reader_gets_what_others_appended_after_it_started(tmp_path: Path) -> None:
    early = PurgeJournal(tmp_path)
    early.publish([Purge("sample", "before")])
    reader, writer = PurgeJournal(tmp_path), PurgeJournal(tmp_path)
    reader.open_at_end()
    writer.publish([Purge("sample", "a.jpg"), Purge("sample")])
    reader.publish([Purge()])  # its own: already applied where it was received

    assert reader.read() == [Purge("sample", "a.jpg"), Purge("sample")]
    assert reader.read() == []
    writer.publish([Purge()])
    assert reader.read() == [Purge()]


def test_rotation_keeps_the_file_bounded_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MAX_SEGMENT_BYTES", 500)
    reader, writer = PurgeJournal(tmp_path), PurgeJournal(tmp_path)
    reader.open_at_end()
    seen: list[Purge] = []
    for n in range(60):
        writer.publish([Purge("sample", f"image-{n}.jpg")])
        if n % 7 == 0:
            seen += reader.read()
        assert len(writer.segments()) <= journal_module.KEEP_SEGMENTS
    seen += reader.read()
    assert seen == [Purge("sample", f"image-{n}.jpg") for n in range(60)]


def test_a_reader_that_fell_too_far_behind_purges_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MAX_SEGMENT_BYTES", 200)
    reader, writer = PurgeJournal(tmp_path), PurgeJournal(tmp_path)
    reader.open_at_end()
    for n in range(40):
        writer.publish([Purge("sample", f"image-{n}.jpg")])

    purges = reader.read()

    assert purges[0] == Purge()
    assert purges[-1] == Purge("sample", "image-39.jpg")


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    reader = PurgeJournal(tmp_path)
    reader.open_at_end()
    with reader.segment_path(1).open("ab") as file:
        file.write(
            b'not json\n{"origin":"x","purge":{"name":"no type"}}\n{"origin":"x","purge":{}}'
        )
    assert reader.read() == []  # the last line is not complete yet
    with reader.segment_path(1).open("ab") as file:
        file.write(b"\n")
    assert reader.read() == [Purge()]


def test_following_applies_the_purges_of_others(tmp_path: Path) -> None:
    async def run() -> list[list[Purge]]:
        applied: list[list[Purge]] = []

        async def apply(purges: list[Purge]) -> None:
            applied.append(purges)

        follower = PurgeJournal(tmp_path, interval=0.01)
        follower.start(apply)
        PurgeJournal(tmp_path).publish([Purge("sample", "x")])
        for _ in range(500):
            if applied:
                break
            await asyncio.sleep(0.01)
        await follower.stop()
        return applied

    assert asyncio.run(run()) == [[Purge("sample", "x")]]


@pytest.mark.parametrize(
    "raw", [{"name": "x"}, {"type": 3}, {"type": "a", "name": "b", "extra": 1}, ["type"]]
)
def test_bad_messages_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="purge"):
        Purge.from_json(raw)  # type: ignore[arg-type]


def test_messages_round_trip() -> None:
    for purge in (Purge(), Purge("t"), Purge("t", "a/b.jpg")):
        assert Purge.from_json(purge.to_json()) == purge
