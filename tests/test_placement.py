"""Placement: which worker an image's key goes to, and stays on."""

from __future__ import annotations

import pytest

from iiif_server import placement
from iiif_server.placement import Placement

IDLE = [0, 0]


def test_a_key_stays_on_its_worker_whatever_the_load() -> None:
    places = Placement(2)
    first = places.place("image-a", False, IDLE, now=0.0)
    assert places.place("image-a", False, [5, 0] if first == 0 else [0, 5], now=1.0) == first


def test_new_keys_go_by_the_keys_in_use_plus_the_tasks_now() -> None:
    places = Placement(2)
    assert places.place("a", False, IDLE, now=0.0) == 0
    assert places.place("b", False, IDLE, now=0.1) == 1  # worker 0 has a session in use
    # Worker 1 has one task now, worker 0 none, each one key: 1 + 1 against 1 + 0.
    assert places.place("c", False, [0, 1], now=0.2) == 0
    # Two keys on 0 and one task on 1 (with its one key): a tie, the fewer keys win.
    assert places.place("d", False, [0, 1], now=0.3) == 1


def test_keys_not_asked_for_lately_no_longer_count() -> None:
    places = Placement(2)
    places.place("a", False, IDLE, now=0.0)
    later = placement.IN_USE_SECONDS + 1
    assert places.place("b", False, IDLE, now=later) == 0


def test_a_light_key_goes_where_nothing_waits_and_does_not_count() -> None:
    places = Placement(2)
    assert places.place("a", False, [1, 0], now=0.0) == 1
    assert places.place("a coarse", True, [0, 1], now=0.0) == 0
    assert places.place("b", False, [1, 1], now=0.1) == 0  # the light key is not a session


def test_a_preferred_key_is_used_only_while_it_was_asked_for_lately() -> None:
    places = Placement(2)
    assert places.preferred("a coarse", now=0.0) is None  # never placed
    places.place("a coarse", True, IDLE, now=0.0)
    assert places.preferred("a coarse", now=1.0) is True  # and light
    assert places.preferred("a coarse", now=placement.PREFERRED_SECONDS + 1) is None


def test_the_least_recently_used_keys_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "MAX_KEYS", 3)
    places = Placement(2)
    for number, key in enumerate("abcd"):
        places.place(key, False, IDLE, now=float(number))
    assert places.preferred("a", now=4.0) is None  # forgotten
    assert all(places.preferred(key, now=4.0) is False for key in "bcd")
