"""Cover lookups: memory, then the store, then the providers in parallel, all within one deadline.

What is remembered: a found URL for the provider's `ttl`, a confirmed "no
cover" for its `negative_ttl`, and nothing at all when the provider failed or
did not answer in time. Concurrent requests for the same `(provider, id)`
share one provider request; a lookup that outlives its request's deadline
goes on in the background and is cached for the next request. A provider that
fails `cooldown_after` times in a row is skipped for `cooldown` seconds, then
one batch is let through to try it again.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from ..errors import BadRequest, Unavailable
from .config import CoversSettings
from .isbn import cache_key
from .providers import Provider, make_providers, safe_url
from .store import CacheKey, CoverStore, make_store

logger = logging.getLogger(__name__)

Answer = dict[str, Any]  # {id: url} or, with `all`, {id: {provider: url}}


class _Unknown(enum.Enum):
    TOKEN = 0


UNKNOWN = _Unknown.TOKEN
Outcome = str | None | _Unknown


@dataclass
class _ProviderHealth:
    failures: int = 0
    skip_until: float = 0.0


class CoolDowns:
    """Consecutive failures per provider; past the limit the provider rests, then gets one try."""

    def __init__(
        self, after: int, seconds: float, trial_seconds: float, clock: Callable[[], float]
    ):
        self._after = after
        self._seconds = seconds
        self._trial_seconds = trial_seconds
        self._clock = clock
        self._health: dict[str, _ProviderHealth] = {}

    def available(self, name: str) -> bool:
        health = self._health.get(name)
        if health is None or health.failures < self._after:
            return True
        now = self._clock()
        if now < health.skip_until:
            return False
        # One trial at a time: the others keep skipping until it has answered.
        health.skip_until = now + self._trial_seconds
        return True

    def failed(self, name: str) -> bool:
        """Count a failure; True when it starts a cool-down."""
        health = self._health.setdefault(name, _ProviderHealth())
        health.failures += 1
        if health.failures >= self._after:
            health.skip_until = self._clock() + self._seconds
            return True
        return False

    def succeeded(self, name: str) -> None:
        self._health.pop(name, None)

    def resting(self) -> list[str]:
        now = self._clock()
        return [name for name, health in self._health.items() if now < health.skip_until]


class CoverService:
    def __init__(
        self,
        settings: CoversSettings,
        store: CoverStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._store = store
        self._cooldowns = CoolDowns(
            settings.cooldown_after, settings.cooldown, settings.deadline, clock
        )
        self._client: AsyncHTTPClient | None = None
        self._providers: dict[str, Provider] = {}
        self._inflight: dict[CacheKey, asyncio.Future[Outcome]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # (provider, outcome) -> ids asked, for /metrics: found, none, unknown, failed.
        self.lookups: collections.Counter[tuple[str, str]] = collections.Counter()

    @classmethod
    def from_settings(cls, settings: CoversSettings, cache_path: Path) -> CoverService:
        store = make_store(
            settings.store,
            cache_path,
            memory_entries=settings.memory_entries,
            max_rows=settings.store_entries,
            timeout=settings.deadline,
        )
        return cls(settings, store)

    async def start(self) -> None:
        """Open the store and the HTTP client; call inside the running loop."""
        self._client = AsyncHTTPClient(force_instance=True, max_clients=32)
        self._providers = make_providers(self.settings, self._client)
        await self._store.start()

    async def ensure_started(self) -> None:
        """Start on first use, for owners that never call start() (one-off commands)."""
        if self._client is None:
            await self.start()

    def provider_urls(self) -> list[str]:
        """The base URLs of the enabled providers (their hosts are the operator's choice)."""
        return [self.settings.provider(name).base_url for name in self.settings.providers]

    async def close(self) -> None:
        """Let lookups under way finish (and be stored) within a deadline, then stop."""
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=self.settings.deadline)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self._store.close()
        if self._client is not None:
            self._client.close()
            self._client = None

    def parse_ids(self, text: str | None) -> list[str]:
        """The ids as sent, without duplicates or empty items; 400 for none or too many."""
        ids = list(dict.fromkeys(part for part in (text or "").split(",") if part.strip()))
        if not ids:
            raise BadRequest("id is missing: /cover?id=ISBN1,ISBN2")
        if len(ids) > self.settings.max_ids:
            raise BadRequest(f"too many ids: {len(ids)}, at most {self.settings.max_ids}")
        return ids

    def parse_providers(self, text: str | None) -> tuple[str, ...]:
        """The requested providers in order, or the configured ones; 400 for an unknown name."""
        names = tuple(
            dict.fromkeys(name.strip() for name in (text or "").split(",") if name.strip())
        )
        if not names:  # absent, empty, or only commas and spaces
            return self.settings.providers
        for name in names:
            if name not in self.settings.providers:
                available = ", ".join(self.settings.providers)
                raise BadRequest(f"unknown provider {name!r} (available: {available})")
        return names

    async def covers(
        self, ids: Sequence[str], providers: Sequence[str], *, all_: bool = False
    ) -> Answer:
        """The /cover answer, under the ids exactly as sent."""
        keys = {identifier: cache_key(identifier) for identifier in ids}
        known = await self._lookup(keys, providers, all_)
        return _answer(keys, providers, known, all_)

    async def first_cover(
        self, identifier: str, providers: Sequence[str] | None = None
    ) -> str | None:
        """The URL that /cover would answer for one id; None when every provider said none.

        Unavailable (503) when there is no URL and a provider did not answer (it
        failed, rests, or missed the deadline): "no cover" is not known then.
        """
        providers = providers or self.settings.providers
        key = cache_key(identifier)
        if key is None:
            return None
        known = await self._lookup({identifier: key}, providers, False)
        for provider in providers:
            if url := known.get((provider, key)):
                return url
        if len(known) < len(providers):
            raise Unavailable(f"the cover providers did not answer for {identifier}")
        return None

    async def _lookup(
        self, keys: Mapping[str, str | None], providers: Sequence[str], all_: bool
    ) -> dict[CacheKey, str | None]:
        """What is known of every (provider, key) pair after cache, store and providers."""
        wanted = list(dict.fromkeys(key for key in keys.values() if key is not None))
        pairs = [(provider, key) for key in wanted for provider in providers]
        known = self._store.peek(pairs)
        if len(known) < len(pairs):
            missing = [pair for pair in pairs if pair not in known]
            if all_ or not _decided(known, set(missing), wanted, providers):
                await self._complete(known, missing, wanted, providers, all_)
        return known

    async def override(self, provider: str, identifier: str, url: str, ttl: float | None) -> str:
        """Coce's /set: remember `url` as `provider`'s cover of `identifier`; the key stored."""
        if provider not in self.settings.providers:
            raise BadRequest(f"unknown provider {provider!r}")
        key = cache_key(identifier)
        if key is None:
            raise BadRequest(f"{identifier!r} is not an ISBN or EAN")
        if safe_url(url) is None:
            raise BadRequest("url must be a plain http(s) URL")
        lifetime = ttl if ttl is not None else self.settings.provider(provider).ttl
        try:
            await self._store.put_many({(provider, key): (url, lifetime)})
        except Exception as error:
            logger.warning("cover store write failed: %s", error)
            raise Unavailable("the cover store is not available") from None
        return key

    async def _complete(
        self,
        known: dict[CacheKey, str | None],
        missing: Sequence[CacheKey],
        wanted: Collection[str],
        providers: Sequence[str],
        all_: bool,
    ) -> None:
        """Fill `known` from the store and then the providers until decided or the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.deadline
        # Lookups under way are joined first: one may finish while the store is read.
        pending = {pair: self._inflight[pair] for pair in missing if pair in self._inflight}
        unasked = [pair for pair in missing if pair not in pending]
        if unasked:
            try:
                stored = await asyncio.wait_for(
                    self._store.get_many(unasked), self.settings.deadline
                )
            except Exception as error:  # a store outage costs the cache, never the answer
                logger.warning("cover store read failed: %s", error or type(error).__name__)
                stored = {}
            known.update(stored)
            pending.update(self._ask([pair for pair in unasked if pair not in known]))
        while pending:
            for pair, future in list(pending.items()):
                if future.done():
                    del pending[pair]
                    outcome = future.result()
                    if outcome is not UNKNOWN:
                        known[pair] = outcome
            remaining = deadline - loop.time()
            if (
                not pending
                or remaining <= 0
                or (not all_ and _decided(known, pending, wanted, providers))
            ):
                return
            await asyncio.wait(
                set(pending.values()), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )

    def _ask(self, missing: Sequence[CacheKey]) -> dict[CacheKey, asyncio.Future[Outcome]]:
        """Futures of the provider answers: joined if already asked, else new batches."""
        futures: dict[CacheKey, asyncio.Future[Outcome]] = {}
        to_ask: dict[str, list[str]] = {}
        for pair in missing:
            future = self._inflight.get(pair)
            if future is not None:
                futures[pair] = future
            else:
                to_ask.setdefault(pair[0], []).append(pair[1])
        loop = asyncio.get_running_loop()
        for name, keys in to_ask.items():
            provider = self._providers.get(name)
            if provider is None or not self._cooldowns.available(name):
                continue
            for start in range(0, len(keys), provider.batch_size):
                chunk = keys[start : start + provider.batch_size]
                batch = {(name, key): loop.create_future() for key in chunk}
                self._inflight.update(batch)
                futures.update(batch)
                task = asyncio.create_task(self._run_batch(provider, chunk, batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return futures

    async def _run_batch(
        self,
        provider: Provider,
        keys: Sequence[str],
        futures: Mapping[CacheKey, asyncio.Future[Outcome]],
    ) -> None:
        found: dict[str, str | None] = {}
        try:
            try:
                found = await provider.lookup(keys)
            except Exception as error:  # whatever a provider does, the server stays up
                self.lookups[(provider.name, "failed")] += len(keys)
                resting = self._cooldowns.failed(provider.name)
                logger.warning(
                    "cover provider %s failed for %d id(s): %s%s",
                    provider.name,
                    len(keys),
                    error or type(error).__name__,
                    f"; skipped for {self.settings.cooldown:g} s" if resting else "",
                )
            else:
                self._cooldowns.succeeded(provider.name)
                for key in keys:
                    url = found.get(key, UNKNOWN)
                    outcome = "unknown" if url is UNKNOWN else "found" if url else "none"
                    self.lookups[(provider.name, outcome)] += 1
            for (_, key), future in futures.items():
                future.set_result(found.get(key, UNKNOWN))
            settings = self.settings.provider(provider.name)
            entries = {
                (provider.name, key): (url, settings.ttl if url else settings.negative_ttl)
                for key, url in found.items()
                if key in keys
            }
            if entries:
                try:
                    await self._store.put_many(entries)
                except Exception as error:
                    logger.warning("cover store write failed: %s", error or type(error).__name__)
        finally:
            for pair, future in futures.items():
                if not future.done():
                    future.set_result(UNKNOWN)
                if self._inflight.get(pair) is future:
                    del self._inflight[pair]


def _decided(
    known: Mapping[CacheKey, str | None],
    unresolved: Collection[CacheKey],
    wanted: Collection[str],
    providers: Sequence[str],
) -> bool:
    """True when no unresolved pair can change the first-found answer of any id."""
    for key in wanted:
        for provider in providers:
            pair = (provider, key)
            if pair in unresolved:
                return False
            if known.get(pair):
                break
    return True


def _answer(
    keys: Mapping[str, str | None],
    providers: Sequence[str],
    known: Mapping[CacheKey, str | None],
    all_: bool,
) -> Answer:
    answer: Answer = {}
    for identifier, key in keys.items():
        if key is None:
            continue
        if all_:
            urls = {p: url for p in providers if (url := known.get((p, key)))}
            if urls:
                answer[identifier] = urls
            continue
        for provider in providers:
            url = known.get((provider, key))
            if url:
                answer[identifier] = url
                break
    return answer
