"""The handler of the `webhooks` queue: one signed POST per attempt, to the job's callback URL.

A 2xx answer delivers the webhook. Anything else (another status, a redirect, which is never
followed, a refusal of the SSRF guard, a timeout) raises, so the queue retries it with
backoff and dead-letters it into `webhooks.dlq` after WEBHOOK_MAX_ATTEMPTS. Its log lines and
errors say "the callback URL", never the URL (its path may hold a secret), and never the
secret."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..queue import JobContext, ReceivedMessage, bounded
from ..services.webhooks import (
    WebhookTarget,
    post_webhook,
    signed_headers,
    webhook_secret,
    webhook_target,
)

logger = logging.getLogger("clipper.webhooks")


class WebhookSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signing_key: bytes,
        allowlist: Collection[str],
        *,
        deadline_seconds: float = 15.0,
    ) -> None:
        """`signing_key`: SIGNING_KEY, from which each key's webhook secret is derived;
        `allowlist`: ALLOWLIST_HOSTS, as for URL sources; `deadline_seconds`: the longest
        wait on the database."""
        self._sessions = sessions
        self._signing_key = signing_key
        self._allowlist = allowlist
        self._deadline = deadline_seconds

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        payload = message.payload or {}
        job_id = uuid.UUID(str(payload["jobId"]))
        target = await bounded(self._target(job_id), self._deadline)
        if target is None:
            logger.warning("the job or its callback URL is gone: webhook dropped")
            return
        body = str(payload["body"]).encode()
        secret = webhook_secret(self._signing_key, target.key_id, target.secret_version)
        # Signed per attempt: the timestamp tells receivers how fresh this delivery is.
        headers = signed_headers(secret, str(message.job_id), int(time.time()), body)
        await post_webhook(target.url, body, headers, self._allowlist)
        logger.info("webhook delivered", extra={"attempt": context.attempt})

    async def _target(self, job_id: uuid.UUID) -> WebhookTarget | None:
        async with self._sessions() as session:
            return await webhook_target(session, job_id)
