"""The TurboJPEG 3 API of libjpeg-turbo, for planar (YCbCr) decoding and encoding.

Decoding a JPEG into its Y, Cb and Cr planes skips chroma upsampling and
colour conversion, and keeps a 4:2:0 image in 1.5 bytes a pixel instead of
Pillow's 4: about half the decode time and a third of the memory. Encoding
from planes skips both steps again. Pillow exposes neither, so this binds
the few functions needed with ctypes.

The library is the libturbojpeg that the `jpegtran-cffi-wheels` dependency
bundles (libjpeg-turbo 3), else a system one that has the TurboJPEG 3 API.
Without one, `available()` is False and callers decode with Pillow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_INIT_COMPRESS, _INIT_DECOMPRESS = 0, 1
# TJPARAM values of turbojpeg.h 3.x.
_QUALITY, _SUBSAMP, _JPEGWIDTH, _JPEGHEIGHT, _PRECISION, _COLORSPACE = 3, 4, 5, 6, 7, 8
_OPTIMIZE, _PROGRESSIVE = 11, 12
_COLORSPACE_YCBCR, _COLORSPACE_GRAY = 1, 2

# TJSAMP values and the chroma sampling factors (horizontal, vertical) they mean.
SAMPLING_BY_SUBSAMP = {0: (1, 1), 1: (2, 1), 2: (2, 2), 4: (1, 2)}
SUBSAMP_BY_SAMPLING = {sampling: subsamp for subsamp, sampling in SAMPLING_BY_SUBSAMP.items()}
_SUBSAMP_GRAY = 3


class TurboJpegError(Exception):
    """The library refused the data (corrupt, truncated, or a variant it cannot do planar)."""


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    # (1, 1) for gray (one plane); else the chroma planes' sampling factors.
    sampling: tuple[int, int]
    planes: int


class _ScalingFactor(ctypes.Structure):
    _fields_ = [("num", ctypes.c_int), ("denom", ctypes.c_int)]


_UNSCALED = _ScalingFactor(1, 1)


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int)]


_WHOLE = _Region(0, 0, 0, 0)
_PIXEL_FORMAT_RGB, _PIXEL_FORMAT_GRAY = 0, 6
_Handle = ctypes.c_void_p
_PlanePointers = ctypes.POINTER(ctypes.c_void_p)
_Strides = ctypes.POINTER(ctypes.c_int)

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "tj3Init": (_Handle, [ctypes.c_int]),
    "tj3Set": (ctypes.c_int, [_Handle, ctypes.c_int, ctypes.c_int]),
    "tj3Get": (ctypes.c_int, [_Handle, ctypes.c_int]),
    "tj3GetErrorStr": (ctypes.c_char_p, [_Handle]),
    "tj3DecompressHeader": (ctypes.c_int, [_Handle, ctypes.c_char_p, ctypes.c_size_t]),
    "tj3SetCroppingRegion": (ctypes.c_int, [_Handle, _Region]),
    "tj3SetScalingFactor": (ctypes.c_int, [_Handle, _ScalingFactor]),
    "tj3Decompress8": (
        ctypes.c_int,
        [_Handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int, ctypes.c_int],
    ),
    "tj3YUVPlaneWidth": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "tj3YUVPlaneHeight": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "tj3DecompressToYUVPlanes8": (
        ctypes.c_int,
        [_Handle, ctypes.c_char_p, ctypes.c_size_t, _PlanePointers, _Strides],
    ),
    "tj3CompressFromYUVPlanes8": (
        ctypes.c_int,
        [
            _Handle,
            _PlanePointers,
            ctypes.c_int,
            _Strides,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ],
    ),
    "tj3Free": (None, [ctypes.c_void_p]),
}


def _candidate_paths() -> list[str]:
    paths = []
    try:
        bundled = importlib.metadata.files("jpegtran-cffi-wheels") or []
    except importlib.metadata.PackageNotFoundError:
        bundled = []
    for file in bundled:
        if file.name.startswith("libturbojpeg"):
            paths.append(str(file.locate()))
    system = ctypes.util.find_library("turbojpeg")
    if system:
        paths.append(system)
    return paths


def _load() -> ctypes.CDLL | None:
    for path in _candidate_paths():
        try:
            library = ctypes.CDLL(path)
            for name, (result, arguments) in _SIGNATURES.items():
                function = getattr(library, name)  # AttributeError: no TurboJPEG 3 API
                function.restype = result
                function.argtypes = arguments
        except (OSError, AttributeError):
            continue
        return library
    return None


_library = _load()
_handles = threading.local()  # a TurboJPEG handle serves one thread at a time


def available() -> bool:
    return _library is not None


def _lib() -> ctypes.CDLL:
    if _library is None:
        raise TurboJpegError("libjpeg-turbo with the TurboJPEG 3 API is not available")
    return _library


def _handle(kind: int, variant: tuple[bool, ...] = ()) -> int:
    """This thread's handle of `kind`; one per `variant` of the settings it keeps.

    A compressor that had optimized Huffman tables on and then off wrote
    corrupt data (libjpeg-turbo 3.0): handles are not switched between settings.
    """
    handles: dict[tuple[int, tuple[bool, ...]], int] = _handles.__dict__.setdefault("by_kind", {})
    handle = handles.get((kind, variant))
    if handle is None:
        handle = _lib().tj3Init(kind)
        if not handle:
            raise TurboJpegError("tj3Init failed")
        handles[(kind, variant)] = handle
    return handle


def _error(handle: int) -> TurboJpegError:
    message = _lib().tj3GetErrorStr(handle) or b"unknown error"
    return TurboJpegError(message.decode("utf-8", "replace"))


def read_header(data: bytes) -> Header:
    """Size and sampling of an 8-bit YCbCr or gray JPEG; anything else raises."""
    lib = _lib()
    handle = _handle(_INIT_DECOMPRESS)
    if lib.tj3DecompressHeader(handle, data, len(data)) != 0:
        raise _error(handle)
    if lib.tj3Get(handle, _PRECISION) != 8:
        raise TurboJpegError("not an 8-bit JPEG")
    colorspace, subsamp = lib.tj3Get(handle, _COLORSPACE), lib.tj3Get(handle, _SUBSAMP)
    width, height = lib.tj3Get(handle, _JPEGWIDTH), lib.tj3Get(handle, _JPEGHEIGHT)
    if colorspace == _COLORSPACE_GRAY and subsamp == _SUBSAMP_GRAY:
        return Header(width, height, (1, 1), 1)
    if colorspace == _COLORSPACE_YCBCR and subsamp in SAMPLING_BY_SUBSAMP:
        return Header(width, height, SAMPLING_BY_SUBSAMP[subsamp], 3)
    raise TurboJpegError(f"no planar decoding for colour space {colorspace}, sampling {subsamp}")


def _subsamp(planes: int, sampling: tuple[int, int]) -> int:
    return _SUBSAMP_GRAY if planes == 1 else SUBSAMP_BY_SAMPLING[sampling]


def plane_sizes(
    width: int, height: int, sampling: tuple[int, int], planes: int
) -> list[tuple[int, int]]:
    """The sizes of the planes the library reads or writes for an image of this size.

    The luma plane is padded to a whole number of chroma samples.
    """
    lib = _lib()
    subsamp = _subsamp(planes, sampling)
    return [
        (lib.tj3YUVPlaneWidth(index, width, subsamp), lib.tj3YUVPlaneHeight(index, height, subsamp))
        for index in range(planes)
    ]


def decode_planes(
    data: bytes,
    header: Header,
    allocate: Callable[[list[int]], list[bytearray]] | None = None,
    scale: int = 1,
) -> tuple[tuple[int, int], list[bytearray]]:
    """The planes of `data` reduced `scale` times (1, 2, 4 or 8) in the DCT.

    Returns the size and the planes. `allocate(lengths)` gives the buffers
    (default: new ones). A reduced decode keeps the source's sampling: a 4:2:0
    source gives 4:2:0 planes at the reduced size.

    Any warning (a truncated file, say) raises: the caller decides with its
    other decoder what such a file means.
    """
    if scale not in (1, 2, 4, 8):
        raise ValueError(f"no DCT scaling by 1/{scale}")
    lib = _lib()
    handle = _handle(_INIT_DECOMPRESS)
    if lib.tj3DecompressHeader(handle, data, len(data)) != 0:
        raise _error(handle)
    size = (-(-header.width // scale), -(-header.height // scale))
    sizes = plane_sizes(*size, header.sampling, header.planes)
    lengths = [width * height for width, height in sizes]
    buffers = allocate(lengths) if allocate else [bytearray(length) for length in lengths]
    pointers = (ctypes.c_void_p * 3)(
        *(ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer)) for buffer in buffers)
    )
    strides = (ctypes.c_int * 3)(*(width for width, _ in sizes))
    try:
        if (
            lib.tj3SetScalingFactor(handle, _ScalingFactor(1, scale)) != 0
            or lib.tj3DecompressToYUVPlanes8(handle, data, len(data), pointers, strides) != 0
        ):
            raise _error(handle)
    finally:
        lib.tj3SetScalingFactor(handle, _UNSCALED)  # the handle serves later decodes
    return size, buffers


def decode_region(
    data: bytes, header: Header, box: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int, int], bytes]:
    """RGB (gray: L) pixels of about `box` (x0, y0, x1, y1), decoding only the rows it needs.

    The left edge moves left to a block boundary, as the library requires;
    returns the box actually decoded and its pixels, row after row.
    """
    lib = _lib()
    handle = _handle(_INIT_DECOMPRESS)
    x0, y0, x1, y1 = box
    x0 -= x0 % (8 * header.sampling[0])
    width, height = x1 - x0, y1 - y0
    channels, pixel_format = (
        (1, _PIXEL_FORMAT_GRAY) if header.planes == 1 else (3, _PIXEL_FORMAT_RGB)
    )
    pixels = ctypes.create_string_buffer(width * height * channels)
    try:
        if (
            lib.tj3DecompressHeader(handle, data, len(data)) != 0
            or lib.tj3SetCroppingRegion(handle, _Region(x0, y0, width, height)) != 0
            or lib.tj3Decompress8(handle, data, len(data), pixels, width * channels, pixel_format)
            != 0
        ):
            raise _error(handle)
    finally:
        lib.tj3SetCroppingRegion(handle, _WHOLE)  # planar decoding refuses a cropping region
    return (x0, y0, x1, y1), pixels.raw


def encode_planes(
    planes: Sequence[bytes],
    size: tuple[int, int],
    sampling: tuple[int, int],
    quality: int,
    optimize: bool = False,
    progressive: bool = False,
) -> bytes:
    """A JPEG from planes laid out as `plane_sizes` says (one plane: gray).

    `optimize` computes Huffman tables for this image (smaller, a little
    slower); `progressive` writes a progressive JPEG (implies optimized tables).
    """
    lib = _lib()
    handle = _handle(_INIT_COMPRESS, (optimize, progressive))
    subsamp = _subsamp(len(planes), sampling)
    settings = (
        (_QUALITY, quality),
        (_SUBSAMP, subsamp),
        (_OPTIMIZE, int(optimize)),
        (_PROGRESSIVE, int(progressive)),
    )
    if any(lib.tj3Set(handle, key, value) != 0 for key, value in settings):
        raise _error(handle)
    width, height = size
    sizes = plane_sizes(width, height, sampling, len(planes))
    for plane, (plane_width, plane_height) in zip(planes, sizes, strict=True):
        if len(plane) != plane_width * plane_height:
            raise ValueError("a plane does not have the size the library reads")
    pointers = (ctypes.c_void_p * 3)(
        *(ctypes.cast(ctypes.c_char_p(plane), ctypes.c_void_p) for plane in planes)
    )
    strides = (ctypes.c_int * 3)(*(plane_width for plane_width, _ in sizes))
    output = ctypes.c_void_p()
    output_size = ctypes.c_size_t(0)
    status = lib.tj3CompressFromYUVPlanes8(
        handle, pointers, width, strides, height, ctypes.byref(output), ctypes.byref(output_size)
    )
    try:
        if status != 0:
            raise _error(handle)
        return ctypes.string_at(output, output_size.value)
    finally:
        lib.tj3Free(output)


def _round_trip_works() -> bool:
    """The TJPARAM values above match this build of the library: a tiny round trip proves it."""
    try:
        sizes = plane_sizes(16, 8, (2, 2), 3)
        data = encode_planes([bytes([128]) * (w * h) for w, h in sizes], (16, 8), (2, 2), 90)
        return read_header(data) == Header(16, 8, (2, 2), 3)
    except (TurboJpegError, ValueError):
        return False


if _library is not None and not _round_trip_works():
    _library = None
