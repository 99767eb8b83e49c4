"""Derivative files written after a burst, by a background thread (`DerivativeCache.put_soon`).

A fresh derivative goes back to the client without waiting for the disk;
until its file lands, the cache answers it from here. The thread gets the
writes once no derivative was made for `_QUIET_SECONDS` (or when
`_MAX_DEFERRED` wait): writing a file costs the front about as much CPU as
answering a request, better spent after a burst than during it. The writes
waiting are bounded in count and bytes: beyond that, the cache writes at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

# Background writes waiting at most; beyond either, a derivative is written at once.
_MAX_PENDING = 512
_MAX_PENDING_BYTES = 64 * 2**20
# Writes wait until no derivative was made for this long (a burst, such as a zoom
# session's tiles, is over) or until this many wait: the disk's CPU then does not
# compete with the burst's requests.
_QUIET_SECONDS = 0.25
_MAX_DEFERRED = 256


class WriteBehind:
    """The derivatives made but not on disk yet (digest -> bytes), and their writer thread.

    The cache gives it how to write a file (`write(path, data)`, run in the
    thread), where an entry's file goes (`path(digest)`), and what to do when
    one lands (`landed(digest, size)`), fails (`failed(key, error)`), or must
    be stored at once on close (`store(key, digest, data)`).
    """

    def __init__(
        self,
        write: Callable[[str, bytes], None],
        path: Callable[[str], str],
        landed: Callable[[str, int], None],
        failed: Callable[[str, OSError], None],
        store: Callable[[str, str, bytes], None],
    ) -> None:
        self._write, self._path = write, path
        self._landed, self._failed, self._store = landed, failed, store
        # Derivatives waiting or handed to the writer thread, served from here until written.
        self._pending: dict[str, bytes] = {}
        self._pending_bytes = 0
        self._writes: set[Future[None]] = set()
        self._writer: ThreadPoolExecutor | None = None
        # Of those, the ones not handed to the writer yet (digest -> key), oldest first.
        self._deferred: OrderedDict[str, str] = OrderedDict()
        self._last_put = 0.0  # loop time of the last add
        self._quiet_timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def get(self, digest: str) -> bytes | None:
        return self._pending.get(digest)

    @property
    def busy(self) -> bool:
        """Writes are waiting or under way."""
        return bool(self._writes or self._deferred)

    def add(self, key: str, digest: str, data: bytes) -> bool:
        """Take `data` to write later; False when full (or already there): write it now."""
        size = len(data)
        if (
            len(self._pending) >= _MAX_PENDING
            or self._pending_bytes + size > _MAX_PENDING_BYTES
            or digest in self._pending
        ):
            return False
        self._pending[digest] = data
        self._pending_bytes += size
        self._deferred[digest] = key
        loop = asyncio.get_running_loop()
        self._last_put = loop.time()
        if len(self._deferred) > _MAX_DEFERRED:
            self._hand_over(*self._deferred.popitem(last=False))
        if self._quiet_timer is None:
            self._quiet_timer = loop.call_later(_QUIET_SECONDS, self._when_quiet)
        return True

    async def flush(self) -> None:
        """Wait until every write has landed."""
        self._hand_over_all()
        while self._writes:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._writes)])
            await asyncio.sleep(0)  # let the completion callbacks run

    def close(self) -> None:
        """Stop the writer thread; writes still deferred are stored here, now."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        while self._deferred:
            digest, key = self._deferred.popitem(last=False)
            data = self._pending.pop(digest)
            self._pending_bytes -= len(data)
            self._store(key, digest, data)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _when_quiet(self) -> None:
        """The timer: hand the deferred writes over once no derivative came for a while."""
        loop = asyncio.get_running_loop()
        remaining = self._last_put + _QUIET_SECONDS - loop.time()
        if remaining > 0:
            self._quiet_timer = loop.call_later(remaining, self._when_quiet)
            return
        self._quiet_timer = None
        self._hand_over_all()

    def _hand_over_all(self) -> None:
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        while self._deferred:
            self._hand_over(*self._deferred.popitem(last=False))

    def _hand_over(self, digest: str, key: str) -> None:
        """Give one deferred write to the writer thread."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="derivative-writer")
        data = self._pending[digest]
        size = len(data)
        loop = asyncio.get_running_loop()
        written = self._writer.submit(self._write, self._path(digest), data)
        self._writes.add(written)
        written.add_done_callback(
            lambda done: (
                None
                if loop.is_closed()
                else loop.call_soon_threadsafe(self._written, key, digest, size, done)
            )
        )

    def _written(self, key: str, digest: str, size: int, done: Future[None]) -> None:
        self._writes.discard(done)
        self._pending.pop(digest, None)
        self._pending_bytes -= size
        error = done.exception()
        if isinstance(error, OSError):
            self._failed(key, error)
            return
        if error is not None:
            raise error
        self._landed(digest, size)
