"""API keys: made, listed and revoked by `clipper keys`, verified for each API request (the
API caches the answer). Each runs in the caller's session; the caller commits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import NewKey, make_key, parse_token, verify_secret
from ..db.models import ApiKey
from ..db.repositories import ApiKeyRepository
from ..domain.tenancy import LOCAL_TENANT
from .webhooks import webhook_secret


@dataclass(frozen=True, slots=True)
class KeySettings:
    """A key's own limits and default callback URL; None keeps the current value (for a new
    key: the KEY_* setting, and no callback)."""

    rate_per_minute: int | None = None
    max_active_jobs: int | None = None
    max_upload_bytes: int | None = None
    callback_url: str | None = None

    def values(self) -> dict[str, int | str]:
        chosen = {
            "rate_per_minute": self.rate_per_minute,
            "max_active_jobs": self.max_active_jobs,
            "max_upload_bytes": self.max_upload_bytes,
            "callback_url": self.callback_url,
        }
        return {name: value for name, value in chosen.items() if value is not None}


async def create_key(
    session: AsyncSession, name: str, is_admin: bool, limits: KeySettings | None = None
) -> NewKey:
    """A new key; its token is in the result only, never stored (only the secret's hash)."""
    key = make_key()
    keys = ApiKeyRepository(session)
    await keys.add(key.id, name, key.secret_hash, is_admin)
    if limits is not None and limits.values():
        await keys.set_limits(key.id, **limits.values())
    return key


async def update_key(session: AsyncSession, key_id: str, limits: KeySettings) -> bool:
    """Change an active key's settings (at least one); False when no active key has this id."""
    return await ApiKeyRepository(session).set_limits(key_id, **limits.values())


async def key_webhook_secret(
    session: AsyncSession, signing_key: bytes, key_id: str, rotate: bool
) -> str | None:
    """The key's webhook secret (after moving it to a new version, with `rotate`: receivers
    must then switch to the new one); None when there is no such active key. The local
    tenant (API keys off) has version 1 and cannot rotate."""
    keys = ApiKeyRepository(session)
    if key_id == LOCAL_TENANT and not rotate:
        return webhook_secret(signing_key, key_id, 1)
    if rotate and not await keys.next_webhook_secret_version(key_id):
        return None
    found = await keys.webhook_settings(key_id)
    return None if found is None else webhook_secret(signing_key, key_id, found[1])


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
