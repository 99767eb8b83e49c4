"""The messages between the supervisor's pools (`pool_broker`) and a front (`pool_client`).

One stream per front (a socket pair: nothing to connect to from outside); each
message is an 8-byte length and a pickled tuple. Both ends only pickle what they
made themselves or got from their own workers.

    front -> supervisor   (SUBMIT, id, pool, payload, label, affinity, light, prefer)
                          (IF_IDLE, id, pool, [(payload, affinity, light, hold), ...])
                          (BROADCAST, id, pool, payload)
                          (READY, id, pool)
                          (CANCEL, id)            the caller gave up: drop it if it waits
                          (DESCRIBED, key)        a viewer asked for this image's info.json
    supervisor -> front   (ANSWER, id, outcome, value)   outcome: RESULT, ERROR, SKIPPED
                          (STATUS, {pool: (PoolStatus, pids)})   a snapshot, now and then
                          (DESCRIBED, key)        another front's viewer: the session's
                                                     tiles may come here (connections spread)
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

SUBMIT = "submit"
IF_IDLE = "if_idle"  # optional work: queued only if every worker is idle
BROADCAST = "broadcast"
READY = "ready"
CANCEL = "cancel"
DESCRIBED = "described"
ANSWER = "answer"
STATUS = "status"

RESULT = "result"
ERROR = "error"
SKIPPED = "skipped"  # IF_IDLE, and a worker was not

# Buffered per stream before reading pauses; bigger than most tiles, so one is read in one go.
STREAM_LIMIT = 4 * 2**20
_HEADER = struct.Struct("!Q")


def encode(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


async def read(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next message; `asyncio.IncompleteReadError` when the other end is gone."""
    (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    message = pickle.loads(await reader.readexactly(length))
    if not isinstance(message, tuple) or not message:
        raise ValueError("not a pool message")
    return message
