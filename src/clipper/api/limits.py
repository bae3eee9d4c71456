"""The caller's limits for a creating request (see services/quotas.py)."""

from __future__ import annotations

from ..services.quotas import Limits, limits_of, take_request
from ..settings import Settings
from .auth import Caller
from .resources import Resources


def default_limits(settings: Settings) -> Limits:
    return Limits(
        rate_per_minute=settings.key_rate_per_minute,
        max_active_jobs=settings.key_max_active_jobs,
        max_upload_bytes=int(settings.key_max_upload_mb * 2**20),
    )


async def count_request(resources: Resources, caller: Caller) -> Limits | None:
    """Count this request against the caller's rate (429 past it) and return its limits for
    the request's own checks; its own short transaction, before the request's work."""
    async with resources.sessions.begin() as session:
        limits = await limits_of(session, caller.scope, default_limits(resources.settings))
        await take_request(session, caller.scope, limits)
    return limits
