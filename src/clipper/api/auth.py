"""Who is calling: API keys from `Authorization: Bearer` or `X-API-Key`, when enabled."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..errors import UnauthorizedError
from ..services.keys import verified_key

# A verified token is trusted this long without re-hashing (scrypt is slow on purpose);
# a revoked key stops working within this time.
CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str | None
    is_admin: bool


ANONYMOUS_LOCAL = Caller(key_id=None, is_admin=True)


class ApiKeys:
    def __init__(self, enabled: bool, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.enabled = enabled
        self._sessions = sessions
        self._verified: dict[str, tuple[Caller, float]] = {}

    async def authenticate(self, token: str | None) -> Caller:
        if not self.enabled:
            return ANONYMOUS_LOCAL  # keys off: the API listens on 127.0.0.1 only by default
        if not token:
            raise UnauthorizedError()
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        caller = await self._verify(token)
        self._verified[digest] = (caller, time.monotonic() + CACHE_SECONDS)
        return caller

    async def _verify(self, token: str) -> Caller:
        async with self._sessions() as session:
            key = await verified_key(session, token)
        if key is None:
            raise UnauthorizedError()
        return Caller(key_id=key.id, is_admin=key.is_admin)
