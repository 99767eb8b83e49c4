"""A real server process with CoceHost pointed at it, as Koha would use it, across a restart."""

from __future__ import annotations

import json
from pathlib import Path

from tests.covers.fake_provider import config_yaml, fake_in_thread
from tests.live import live_server

BOOK = "9780415480635"
THIRD = "9780306406157"


def test_koha_calls_a_running_server_and_the_cache_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "data" / "sources" / "sample").mkdir(parents=True)
    with fake_in_thread() as fake:
        fake.gb[BOOK] = "v1"
        fake.ol[THIRD] = 33
        (tmp_path / "config.yml").write_text(config_yaml(fake))
        args = ("--config", "config.yml")
        expected = {
            BOOK: f"{fake.url}/gb/content?id=v1&printsec=frontcover&img=1&zoom=1&source=gbs_api",
            THIRD: f"{fake.url}/ol/b/id/33-M.jpg",
        }
        with live_server(tmp_path, args=args) as server:
            status, headers, body = server.get(
                f"/cover?id={BOOK},{THIRD}&provider=gb,ol&callback=jQuery1_2&_=3"
            )
            assert status == 200
            assert headers["Content-Type"] == "application/javascript; charset=utf-8"
            assert body.decode() == f"jQuery1_2({json.dumps(expected, separators=(',', ':'))})"
        fake.mode.update(gb="fail", ol="fail")
        with live_server(tmp_path, args=args) as server:
            status, _, body = server.get(f"/cover?id={BOOK},{THIRD}&provider=gb,ol")
        assert status == 200 and json.loads(body) == expected
        assert len(fake.requests) == 2
    assert (tmp_path / "data" / "cache" / "covers" / "covers.sqlite3").is_file()
