"""Exactly-once rewards: "has this request's reward been counted yet?", asked once per `/feedback`.

Two stores answer it. With several router replicas (or to survive restarts), a Redis or Valkey
server that every replica of a deployment reaches: `SET <key> 1 NX PX <ttl>` is one atomic
round trip that only its first caller wins, and the entry expires by itself after the feedback TTL,
so the store's memory is bounded by the rewards of one TTL. Without a store (one replica, local
runs), a bounded in-process set with the same TTL: exact for one process, forgotten on restart.

Design decision: the store only de-duplicates. Which variant answered travels in the signed request
id (`tokens`), so nothing is written on the request path and a reward can be joined by any
replica, a restarted one too. The store also shares the signing key when no key is configured
(`shared_key`): the first replica to start writes a random one, `SET NX`; every replica reads it.

Exceptions::

    StoreError      the store did not answer (the router answers 503: retry later; the reward is
                    not counted, so a retry cannot count it twice)
"""

from __future__ import annotations

import collections
import secrets
from typing import Any, Protocol


class StoreError(Exception):
    """The shared store did not answer."""


class Dedup(Protocol):
    async def first(self, nonce: str, *, ttl_ms: int) -> bool:
        """True exactly once per nonce within `ttl_ms`; False for every later call."""
        ...

    async def close(self) -> None: ...

    @property
    def where(self) -> str:
        """For logs and errors: where the de-duplication lives."""
        ...


class MemoryDedup:
    """The nonces seen in the last TTL, in one process; bounded (oldest forgotten first).

    Entries live in insertion order (an `OrderedDict`, a linked list, so popping from the front
    stays O(1) as entries come and go); the clock is the caller's.
    """

    def __init__(self, *, max_entries: int, clock: Any) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.evicted = 0

    @property
    def where(self) -> str:
        return "in this process"

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            nonce, until = next(iter(seen.items()))
            if until > now and len(seen) <= self.max_entries:
                break
            del seen[nonce]
            if until > now:
                self.evicted += 1

    async def first(self, nonce: str, *, ttl_ms: int) -> bool:
        now = self._clock()
        self._expire(now)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now + ttl_ms / 1000
        self._expire(now)
        return True

    async def close(self) -> None:
        self._seen.clear()


class RedisDedup:
    """De-duplication in a Redis or Valkey server shared by every replica of one deployment."""

    def __init__(self, url: str, *, prefix: str, timeout_seconds: float) -> None:
        import redis.asyncio

        self._url_shown = _without_password(url)
        self._client: Any = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
        )
        self._prefix = prefix

    @property
    def where(self) -> str:
        return f"the shared store {self._url_shown}"

    async def first(self, nonce: str, *, ttl_ms: int) -> bool:
        import redis

        try:
            won = await self._client.set(self._prefix + "seen:" + nonce, b"1", nx=True, px=ttl_ms)
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"{self.where}: {type(exc).__name__}") from exc
        return bool(won)

    async def shared_key(self) -> bytes:
        """The deployment's request-id key: the one in the store, or a new random one put there
        (`SET NX`: when replicas start together, the first write wins and all read it)."""
        import redis

        name = self._prefix + "key"
        try:
            await self._client.set(name, secrets.token_bytes(32), nx=True)
            key: bytes | None = await self._client.get(name)
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"{self.where}: {type(exc).__name__}") from exc
        if not key:
            raise StoreError(f"{self.where}: the key {name} vanished")
        return key

    async def close(self) -> None:
        await self._client.aclose()


def _without_password(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
