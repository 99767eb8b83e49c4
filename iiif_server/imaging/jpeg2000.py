"""How far a JPEG 2000 codestream can be reduced while decoding.

Pillow does not expose the number of wavelet decomposition levels, and asking
OpenJPEG for more reduction than the file has fails the whole decode, so the
COD marker of the main header is read here.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SOC = b"\xff\x4f"
_COD = 0x52
_SOT = 0x90


def decomposition_levels(fp: BinaryIO) -> int:
    """Decomposition levels of a .jp2 or .j2k file (0 when it cannot be read)."""
    fp.seek(0)
    head = fp.read(12)
    if head == _JP2_SIGNATURE:
        if not _seek_box(fp, b"jp2c"):
            return 0
    elif head.startswith(_SOC):
        fp.seek(0)
    else:
        return 0
    if fp.read(2) != _SOC:
        return 0
    while True:
        marker = fp.read(4)
        if len(marker) < 4 or marker[0] != 0xFF or marker[1] == _SOT:
            return 0
        (length,) = struct.unpack(">H", marker[2:])
        if length < 2:
            return 0
        segment = fp.read(length - 2)
        if marker[1] == _COD:
            # Scod (1), progression (1), layers (2), colour transform (1), then levels.
            return segment[5] if len(segment) > 5 else 0


def _seek_box(fp: BinaryIO, wanted: bytes) -> bool:
    """Position `fp` at the content of the first top-level box of type `wanted`."""
    fp.seek(12)
    while True:
        header = fp.read(8)
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header)
        content = 8
        if length == 1:
            (length,) = struct.unpack(">Q", fp.read(8))
            content = 16
        if kind == wanted:
            return True
        if length < content:  # 0: box runs to the end of the file
            return False
        fp.seek(length - content, 1)
