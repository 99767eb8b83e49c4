"""Render one resolved IIIF image request from a source file (runs in the image pool).

Pipeline: pick the coarsest decode level that still has the pixels needed,
take it from the per-process decoded cache or decode it, cut the region in
stored orientation and resize it, turn it upright, mirror and rotate, apply
the quality, encode.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.request import ImageRequest
from iiif_server.imaging import decode, orientation, reader, spare, transform
from iiif_server.imaging.decode import Decoded
from iiif_server.imaging.decoded_cache import DecodedCache, DecodedKey
from iiif_server.imaging.encode import EncodeOptions, encode
from iiif_server.imaging.lossless import lossless_jpeg
from iiif_server.imaging.planes import Planes
from iiif_server.imaging.warm_up import exercise_codecs
from iiif_server.sources.base import SourceScope
from iiif_server.worker_process import when_idle

__all__ = [
    "EncodeOptions",
    "choose_scale",
    "configure_worker",
    "decoded_cache_stats",
    "prepare",
    "prepare_coarse",
    "purge_decoded",
    "render",
]

# Formats whose outputs can carry alpha: rotation corners stay transparent there.
_ALPHA_FORMATS = frozenset({"png", "webp", "gif", "tif", "jp2"})
# Reduced levels made from a full decode (formats without reduced decoding) stop here.
_MAX_SCALE = 64
# A region at most this share of the image is decoded alone when nothing is cached.
_REGION_ALONE_SHARE = 0.25
_REGIONS_REMEMBERED = 4096


@dataclass(frozen=True)
class _Worker:
    cache: DecodedCache
    max_pixels: int
    # Sources whose one region was decoded alone: a second request decodes them whole.
    regions_decoded: OrderedDict[DecodedKey, None] = field(default_factory=OrderedDict)


_worker: _Worker | None = None


def configure_worker(
    decoded_cache_bytes: int, max_pixels: int, decoded_cache_images: int | None = None
) -> None:
    """Pool initializer: this process's decoded-source cache and pixel limit."""
    global _worker
    _worker = _Worker(DecodedCache(decoded_cache_bytes, decoded_cache_images), max_pixels)
    exercise_codecs()
    when_idle(spare.refill)


def decoded_cache_stats() -> dict[str, int]:
    """Hits, misses, entries and bytes of this process's decoded cache (for status pages)."""
    if _worker is None:
        return {}
    cache = _worker.cache
    return {
        "pid": os.getpid(),  # counts start again in a replaced worker
        "hits": cache.hits,
        "misses": cache.misses,
        "entries": len(cache),
        "bytes": cache.bytes,
    }


def purge_decoded(scope: SourceScope) -> int:
    """Sent to every worker by a purge: forget the decodes of the sources in `scope`."""
    if _worker is None:
        return 0
    for key in [key for key in _worker.regions_decoded if scope.matches(key.path)]:
        del _worker.regions_decoded[key]
    return _worker.cache.purge(scope.matches)


def render(
    path: str,
    identity: str,
    info: ImageInfo,
    request: ImageRequest,
    options: EncodeOptions,
    deep_zoom: bool = False,
) -> bytes:
    """The encoded output of `request` (already resolved against `info`).

    `identity` changes whenever the file does (size, mtime), so an edited file
    is never cut from a stale decode. Raises NotFound, SourceTooLarge or
    SourceError; every other failure of the imaging library is a SourceError.
    """
    worker = _worker
    if worker is None:
        raise RuntimeError("configure_worker() must run in this process before render()")
    with reader.pillow_errors(worker.max_pixels, "the image could not be rendered"):
        unchanged = lossless_jpeg(path, info, request)
        if unchanged is not None:
            return unchanged
        # A viewer that asked for info.json is zooming: even its first, whole-image
        # request is better served by the full decode every later tile will need.
        whole = not deep_zoom and (request.region_w, request.region_h) == (
            info.width,
            info.height,
        )
        scale = choose_scale(info, request, deep_zoom)
        decoded = None
        if scale == 1 and not deep_zoom:
            decoded = _region_alone(worker, path, identity, info, request)
        if decoded is None:
            decoded = _decoded(worker, path, identity, info, scale, whole)
        turn = decoded.orientation
        box = _stored_box(info, request, turn)
        size = orientation.stored_size(turn, (request.width, request.height))
        if isinstance(decoded.image, Planes) and _jpeg_of_planes(decoded.image, request):
            piece = transform.cut_planes(decoded, box, size)
            upright = piece if turn == 1 else piece.turned(turn)
            if upright is not None:
                return upright.encode_jpeg(
                    options.jpeg_quality,
                    gray=request.quality == "gray",
                    optimize=options.jpeg_optimize,
                    progressive=options.jpeg_progressive,
                )
        gray = request.quality in ("gray", "bitonal")
        image = orientation.apply(transform.cut(decoded, box, size, gray), turn)
        image = transform.mirror_and_rotate(
            image, request.mirror, request.rotation, request.format in _ALPHA_FORMATS
        )
        image = transform.apply_quality(image, request.quality)
        return encode(image, request.format, options)


def prepare(path: str, identity: str, info: ImageInfo, coarsest: int | None = None) -> None:
    """Decode the source and make its levels down to `coarsest` (default: the
    coarsest a zoom session cuts).

    What the first tile of a session would do, done when its info.json is asked for.
    """
    worker = _worker
    if worker is None:
        raise RuntimeError("configure_worker() must run in this process before prepare()")
    coarsest = coarsest or decode.max_native_scale(info) or _MAX_SCALE
    while coarsest > 1 and (info.width // coarsest < 1 or info.height // coarsest < 1):
        coarsest //= 2
    with reader.pillow_errors(worker.max_pixels, "the image could not be decoded"):
        _decoded(worker, path, identity, info, coarsest, False)


def prepare_coarse(path: str, identity: str, info: ImageInfo, scale: int) -> None:
    """Decode the source reduced `scale` times in the DCT and make the coarser levels.

    For the first tiles of a session, which are the coarsest levels: another
    worker makes them while the full decode that the finer levels need runs
    in this image's own worker. A reduced decode costs most of a full one
    (the entropy decoding is the same) but none of its halvings.
    """
    worker = _worker
    if worker is None:
        raise RuntimeError("configure_worker() must run in this process before prepare_coarse()")
    key = DecodedKey(path, identity, info.page, scale)
    with reader.pillow_errors(worker.max_pixels, "the image could not be decoded"):
        if worker.cache.peek(key) is None:
            worker.cache.make_room(-(-info.width // scale) * -(-info.height // scale) * 2, key)
            worker.cache.put(key, decode.decode_planar(path, info, scale, worker.max_pixels))
        coarsest = decode.max_native_scale(info) or _MAX_SCALE
        if coarsest > scale:
            _decoded(worker, path, identity, info, coarsest, False)


def _jpeg_of_planes(planes: Planes, request: ImageRequest) -> bool:
    """Whether the output is a JPEG of the cut planes themselves, turned upright at most
    (EXIF orientation): no other pixel work."""
    if request.format != "jpg" or request.mirror or request.rotation != 0:
        return False
    if planes.is_gray:
        return request.quality in ("default", "gray")
    return request.quality in ("default", "color", "gray")


def _region_alone(
    worker: _Worker, path: str, identity: str, info: ImageInfo, request: ImageRequest
) -> Decoded | None:
    """A small full-resolution region of a source not decoded yet, decoded by itself.

    For the first such request of a source outside a zoom session (a link to
    a detail, an annotation's crop); a second one decodes the whole source
    into the cache, as more requests are then likely to follow.
    """
    if request.region_w * request.region_h > _REGION_ALONE_SHARE * info.width * info.height:
        return None
    key = DecodedKey(path, identity, info.page, 1)
    if worker.cache.peek(key) is not None or key in worker.regions_decoded:
        return None
    worker.regions_decoded[key] = None
    if len(worker.regions_decoded) > _REGIONS_REMEMBERED:
        worker.regions_decoded.popitem(last=False)
    box = _stored_box(info, request, info.orientation)
    return decode.decode_region(path, info, box, worker.max_pixels)


def _stored_box(info: ImageInfo, request: ImageRequest, turn: int) -> orientation.Box:
    """The requested region in the pixels as stored, which `turn` makes upright."""
    stored = orientation.stored_size(turn, (info.width, info.height))
    region = (
        request.region_x,
        request.region_y,
        request.region_x + request.region_w,
        request.region_y + request.region_h,
    )
    return orientation.to_stored_box(turn, region, stored)


def choose_scale(info: ImageInfo, request: ImageRequest, deep_zoom: bool = False) -> int:
    """The largest power of two by which the region can shrink and still fill the output.

    Alone, a request shrinks no further than the format decodes reduced (1/8 for a
    JPEG), then resamples. In a zoom session every level is made by halving the
    next finer one, so the coarsest tiles come from a level of their own: a box
    average of a few ms less than a Lanczos resampling of the finer level.
    """
    ratio = min(request.region_w / request.width, request.region_h / request.height)
    limit = _MAX_SCALE if deep_zoom else decode.max_native_scale(info) or _MAX_SCALE
    scale = 1
    while scale * 2 <= ratio and scale * 2 <= limit:
        scale *= 2
    return scale


def _decoded(
    worker: _Worker, path: str, identity: str, info: ImageInfo, scale: int, whole: bool
) -> Decoded:
    """The level `scale` of the source, from the cache, a finer cached level, or a decode.

    A request for the whole image (a thumbnail) decodes just the level it
    needs, reduced while decoding where the format allows. A tile is part of a
    deep-zoom session that will want every level: the source is decoded once
    at full size and each coarser level is made by halving the next finer one
    (a few ms), which costs far less than one reduced decode per level.
    """
    key = DecodedKey(path, identity, info.page, scale)
    cached = worker.cache.get(key)
    if cached is not None:
        return cached
    finer = scale // 2
    while finer >= 1:
        source = worker.cache.peek(key._replace(scale=finer))
        if source is not None:
            decoded = decode.reduce(source, scale // finer)
            break
        finer //= 2
    else:
        if scale == 1 or (whole and decode.reduces_natively(info)):
            worker.cache.make_room(-(-info.width // scale) * -(-info.height // scale) * 4, key)
            decoded = decode.decode(path, info, scale, worker.max_pixels)
        else:
            decoded = decode.reduce(_decoded(worker, path, identity, info, scale // 2, whole), 2)
    worker.cache.put(key, decoded)
    return decoded
