from __future__ import annotations

from PIL import Image

from iiif_server.imaging.decode import Decoded
from iiif_server.imaging.decoded_cache import DecodedCache, DecodedKey


def decoded(width: int) -> Decoded:
    """`width` * 10 RGB pixels: 40 * width bytes (Pillow keeps RGB in 4 bytes a pixel)."""
    return Decoded(Image.new("RGB", (width, 10)), scale=1, orientation=1)


def key(name: str, identity: str = "v1", scale: int = 1) -> DecodedKey:
    return DecodedKey(name, identity, page=0, scale=scale)


def test_a_hit_returns_the_same_decode() -> None:
    cache = DecodedCache(max_bytes=10_000)
    entry = decoded(10)
    cache.put(key("a"), entry)
    assert cache.get(key("a")) is entry
    assert cache.get(key("a", scale=2)) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = DecodedCache(max_bytes=3 * 400)
    for name in "abc":
        cache.put(key(name), decoded(10))
    cache.get(key("a"))  # b is now the oldest
    cache.put(key("d"), decoded(10))
    assert cache.get(key("b")) is None
    assert all(cache.get(key(name)) is not None for name in "acd")
    assert cache.bytes == 1200


def test_bytes_stay_within_the_budget() -> None:
    cache = DecodedCache(max_bytes=1000)
    for width in range(1, 25):
        cache.put(key(f"image{width}"), decoded(width))
        assert cache.bytes <= 1000
    assert cache.get(key("image24")) is not None  # the newest always fits here


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    cache = DecodedCache(max_bytes=1000)
    cache.put(key("small"), decoded(10))
    cache.put(key("huge"), decoded(100))
    assert cache.get(key("huge")) is None
    assert cache.get(key("small")) is not None


def test_replacing_an_entry_counts_its_bytes_once() -> None:
    cache = DecodedCache(max_bytes=1000)
    cache.put(key("a"), decoded(10))
    cache.put(key("a"), decoded(20))
    assert (len(cache), cache.bytes) == (1, 800)


def test_a_new_identity_drops_the_decodes_of_the_old_file() -> None:
    cache = DecodedCache(max_bytes=10_000)
    cache.put(key("a", "v1"), decoded(10))
    cache.put(key("a", "v1", scale=2), decoded(5))
    cache.put(key("b", "v1"), decoded(10))
    cache.put(key("a", "v2"), decoded(10))
    assert cache.get(key("a", "v1")) is None
    assert cache.get(key("a", "v1", scale=2)) is None
    assert cache.get(key("b", "v1")) is not None
    assert cache.bytes == 800


def test_room_is_made_before_a_decode() -> None:
    cache = DecodedCache(max_bytes=1000)
    cache.put(key("a"), decoded(10))
    cache.put(key("b"), decoded(10))
    cache.make_room(500)  # a decode of ~500 bytes is coming: the oldest goes first
    assert cache.get(key("a")) is None
    assert cache.get(key("b")) is not None
    assert cache.bytes + 500 <= 1000


def test_a_count_of_images_keeps_every_level_of_each() -> None:
    """The seed's `image_cache_size_per_process: 5`: five images, each with its levels."""
    cache = DecodedCache(max_bytes=1 << 20, max_images=2)
    for name in "ab":
        cache.put(key(name), decoded(10))
        cache.put(key(name, scale=2), decoded(5))
    assert len(cache) == 4  # two images, two levels each: far below the bytes
    cache.get(key("a"))  # b is now the least recently used image
    cache.put(key("c"), decoded(10))
    assert cache.peek(key("b")) is None and cache.peek(key("b", scale=2)) is None
    assert cache.peek(key("a")) is not None and cache.peek(key("c")) is not None


def test_a_count_of_images_is_still_bounded_in_bytes() -> None:
    cache = DecodedCache(max_bytes=1000, max_images=5)
    for name in "abc":
        cache.put(key(name), decoded(10))  # 400 bytes each
    assert cache.bytes <= 1000 and len(cache) == 2


def test_room_for_a_new_image_is_made_before_its_decode() -> None:
    cache = DecodedCache(max_bytes=1 << 20, max_images=1)
    cache.put(key("a"), decoded(10))
    cache.make_room(400, key("a", scale=2))  # another level of the same image: kept
    assert cache.peek(key("a")) is not None
    cache.make_room(400, key("b"))
    assert len(cache) == 0 and cache.bytes == 0
