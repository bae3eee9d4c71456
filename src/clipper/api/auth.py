"""Who is calling: API keys from `Authorization: Bearer` or `X-API-Key`, when enabled."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..domain.tenancy import LOCAL_TENANT, Scope
from ..errors import UnauthorizedError
from ..services.keys import verified_key

T = TypeVar("T")

# A verified token is trusted this long without re-hashing (scrypt is slow on purpose);
# a revoked key stops working within this time.
CACHE_SECONDS = 30.0
# A refused token is refused again this long without re-hashing: repeating a wrong secret
# costs the server nothing.
REFUSED_CACHE_SECONDS = 10.0
# Remembered tokens at most; past it the caches start again (a flood of distinct wrong
# tokens must not grow memory without bound).
CACHE_ENTRIES = 10_000
# Verifications hashing at once (scrypt runs in threads; more would only queue on the cores
# and slow the API's other requests).
CONCURRENT_VERIFICATIONS = 2


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str | None
    is_admin: bool

    @property
    def scope(self) -> Scope:
        """What the caller reaches: its own key's uploads and jobs; an admin key, and the
        local service with keys off, every tenant's."""
        return Scope(self.key_id or LOCAL_TENANT, every_tenant=self.is_admin)


ANONYMOUS_LOCAL = Caller(key_id=None, is_admin=True)


class ApiKeys:
    def __init__(self, enabled: bool, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.enabled = enabled
        self._sessions = sessions
        self._verified: dict[str, tuple[Caller, float]] = {}
        self._refused: dict[str, float] = {}
        self._hashing = asyncio.Semaphore(CONCURRENT_VERIFICATIONS)

    async def authenticate(self, token: str | None) -> Caller:
        if not self.enabled:
            return ANONYMOUS_LOCAL  # keys off: the API listens on 127.0.0.1 only by default
        if not token:
            raise UnauthorizedError()
        digest = hashlib.sha256(token.encode(errors="replace")).hexdigest()
        now = time.monotonic()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        if self._refused.get(digest, 0.0) > now:
            raise UnauthorizedError()
        caller = await self._verify(token)
        if caller is None:
            _remember(self._refused, digest, time.monotonic() + REFUSED_CACHE_SECONDS)
            raise UnauthorizedError()
        _remember(self._verified, digest, (caller, time.monotonic() + CACHE_SECONDS))
        return caller

    async def _verify(self, token: str) -> Caller | None:
        async with self._hashing, self._sessions() as session:
            key = await verified_key(session, token)
        return None if key is None else Caller(key_id=key.id, is_admin=key.is_admin)


def _remember(cache: dict[str, T], digest: str, value: T) -> None:
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()
    cache[digest] = value
