"""Completion webhooks: when a job ends (done, failed, cancelled), its callback URL (or its
key's default one) gets a POST of its status, signed the Standard Webhooks way
(https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp` and
`webhook-signature`, HMAC-SHA256 with a secret of the job's API key.

The webhook is a message on the queue `webhooks`, published in the transaction that ends the
job. Its job id is derived from the job and its status: it is the `webhook-id` of every
attempt (receivers deduplicate on it), and ending a job twice publishes it once. The secret is
derived from SIGNING_KEY, never stored. The URL is read when the webhook is delivered and is
never written into the message, an error or a log line: its path may hold a secret of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Job
from ..db.repositories import ApiKeyRepository, JobRepository
from ..domain.jobs import JobStatus
from ..domain.subtitles import SubtitlesMade
from ..domain.timecode import format_timecode
from ..fetch.download import pinned_request
from ..fetch.guard import ForbiddenUrlError, check_url
from ..logs import httpx_unlogged
from ..queue import QueueAdapter, QueueMessage

WEBHOOK_QUEUE = "webhooks"
# Not a setting (QUEUE_MAX_ATTEMPTS is the clips'): a receiver may be down for minutes, so a
# webhook gets more attempts than a clip, at the queue's backoff (doubling, at most
# QUEUE_RETRY_BACKOFF_MS_MAX): about 4 minutes with the defaults. Then webhooks.dlq.
WEBHOOK_MAX_ATTEMPTS = 10
WEBHOOK_TIMEOUT_SECONDS = 10.0
# At most this many deliveries of one key run at once, across workers: a key whose receiver
# hangs holds that many of the consumer's slots, never all of them.
WEBHOOK_DELIVERIES_PER_KEY = 2
# Standard Webhooks marks a secret (base64 of its key bytes) with this prefix.
WHSEC_PREFIX = "whsec_"


class WebhookDeliveryError(Exception):
    """The callback URL did not take the webhook (retried). The message never names the URL."""

    code = "WEBHOOK_FAILED"


def webhook_secret(signing_key: bytes, key_id: str, version: int) -> str:
    """The webhook secret of an API key (version `version`), derived from SIGNING_KEY: the
    same in every process that has the same SIGNING_KEY, and never stored."""
    digest = hmac.new(
        signing_key, f"clipper-webhook:{key_id}:{version}".encode(), hashlib.sha256
    ).digest()
    return WHSEC_PREFIX + base64.b64encode(digest).decode()


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, sent at `timestamp` (epoch seconds)."""
    key = base64.b64decode(secret.removeprefix(WHSEC_PREFIX))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def webhook_id(job_id: uuid.UUID, status: str) -> uuid.UUID:
    """One id per job and ending: the same for every attempt of that webhook."""
    return uuid.uuid5(job_id, status)


def job_event(job: Job) -> dict[str, Any]:
    """The webhook's payload: what the job's key may read through the API anyway (its status,
    error and links), and nothing else: no storage keys, paths or URLs."""
    status = JobStatus(job.status)
    links = {"self": f"/api/jobs/{job.id}", "events": f"/api/jobs/{job.id}/events"}
    if status is JobStatus.DONE:
        links["result"] = f"/api/jobs/{job.id}/result"
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    # As GET /api/jobs/{id} spells them: where a fast cut's clip really starts matters to
    # whoever lines it up with the source.
    actual_start = None if job.actual_start_ms is None else format_timecode(job.actual_start_ms)
    return {
        "type": f"job.{status}",
        "timestamp": job.updated_at.isoformat(),
        "data": {
            "jobId": str(job.id),
            "status": str(status),
            "cut": job.cut_mode,
            "actualStart": actual_start,
            # Where a done job's subtitles came from, as GET /api/jobs/{id} says.
            "subtitles": None
            if job.subtitles is None
            else SubtitlesMade.from_json(job.subtitles).to_json(),
            "error": error,
            "links": links,
        },
    }


async def enqueue_job_webhook(session: AsyncSession, queue: QueueAdapter, job: Job) -> bool:
    """Publish the webhook of `job` (read after its status changed) on the `webhooks` queue,
    in the caller's transaction: it is sent if and only if the ending commits. False when
    neither the job nor its key names a callback URL, or when this ending was published
    already. The body is fixed here, so every attempt sends the same bytes."""
    if job.callback_url is None:
        key = await ApiKeyRepository(session).webhook_settings(job.tenant_id)
        if key is None or key[0] is None:
            return False
    body = json.dumps(job_event(job), separators=(",", ":"), sort_keys=True)
    message = QueueMessage(
        webhook_id(job.id, job.status),
        payload={"jobId": str(job.id), "body": body},
        group=job.tenant_id,  # keys take turns, and WEBHOOK_DELIVERIES_PER_KEY caps each
    )
    return await queue.publish(
        message, queue=WEBHOOK_QUEUE, conn=session, max_attempts=WEBHOOK_MAX_ATTEMPTS
    )


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a job's webhook goes, and which secret signs it."""

    url: str = field(repr=False)  # never printed: its path may hold a secret
    key_id: str
    secret_version: int


async def webhook_target(session: AsyncSession, job_id: uuid.UUID) -> WebhookTarget | None:
    """The job's callback URL (else its key's, as the key names it now) and its key's secret
    version; None when the job is gone (retention) or no URL is left."""
    job = await JobRepository(session).get(job_id)
    if job is None:
        return None
    key = await ApiKeyRepository(session).webhook_settings(job.tenant_id)
    url = job.callback_url or (key[0] if key is not None else None)
    if url is None:
        return None
    # A tenant without a key row (the "local" one, with API keys off) signs with version 1.
    return WebhookTarget(url, job.tenant_id, key[1] if key is not None else 1)


async def post_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allowlist: Collection[str],
    timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS,
) -> None:
    """POST `body` to `url` through the SSRF guard (checked again now: DNS answers change),
    on the vetted address, following no redirect. Returns on a 2xx answer; anything else
    raises WebhookDeliveryError, whose message names neither the URL nor its host."""
    try:
        with httpx_unlogged():
            async with (
                asyncio.timeout(timeout_seconds),
                httpx.AsyncClient(timeout=timeout_seconds) as client,
            ):
                try:
                    destination = await asyncio.to_thread(check_url, url, allowlist)
                except ForbiddenUrlError:
                    # Its reason names the host (and an invalid URL's, the URL): left out.
                    raise WebhookDeliveryError("the SSRF guard refuses the callback URL") from None
                request = pinned_request(client, destination, "POST", headers=headers, content=body)
                # Streamed and closed unread: the receiver's answer body is not wanted.
                response = await client.send(request, stream=True)
                await response.aclose()
    except TimeoutError:
        raise WebhookDeliveryError(
            f"the callback URL did not answer within {timeout_seconds:g} s"
        ) from None
    except httpx.HTTPError as exc:  # httpx messages may quote the URL: only the type is kept
        raise WebhookDeliveryError(
            f"the callback URL could not be reached ({type(exc).__name__})"
        ) from None
    if not response.is_success:
        redirect = " (redirects are not followed)" if response.is_redirect else ""
        raise WebhookDeliveryError(
            f"the callback URL answered HTTP {response.status_code}{redirect}"
        )
