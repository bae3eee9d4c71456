"""API keys: made, listed and revoked by `clipper keys`, verified for each API request (the
API caches the answer). Each runs in the caller's session; the caller commits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import NewKey, make_key, parse_token, verify_secret
from ..db.models import ApiKey
from ..db.repositories import ApiKeyRepository


async def create_key(session: AsyncSession, name: str, is_admin: bool) -> NewKey:
    """A new key; its token is in the result only, never stored (only the secret's hash)."""
    key = make_key()
    await ApiKeyRepository(session).add(key.id, name, key.secret_hash, is_admin)
    return key


async def all_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Oldest first, revoked ones included."""
    return await ApiKeyRepository(session).all()


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    """False when no active key has this id."""
    return await ApiKeyRepository(session).revoke(key_id)


async def verified_key(session: AsyncSession, token: str) -> ApiKey | None:
    """The active key `token` proves; None for a malformed token, an unknown or revoked key,
    or a wrong secret."""
    parts = parse_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    key = await ApiKeyRepository(session).get(key_id)
    if key is None or key.revoked_at is not None:
        return None
    # scrypt takes tens of milliseconds on purpose: in a thread (it releases the GIL), so the
    # event loop keeps answering other requests while wrong secrets are being checked.
    if not await asyncio.to_thread(verify_secret, secret, key.secret_hash):
        return None
    return key
