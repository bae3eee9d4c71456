"""Alerts for dead letters: a webhook POST when ALERT_WEBHOOK_URL is set (the dead-letter
consumer logs every letter once, at error level, before it calls this). A failed POST raises,
so the DLQ consumer retries it with backoff; it never stops the consumer.

The webhook's URL often is its secret (a token in its path), so it is never written anywhere:
not in the error, which the consumer logs and stores as the message's last error, and not in
httpx's own log line of the request."""

from __future__ import annotations

import httpx

from ..logs import httpx_unlogged
from ..queue import AlertHook, DeadLetter

TIMEOUT_SECONDS = 10.0


class AlertFailedError(Exception):
    """The webhook did not take the alert; the message says why, never naming the URL."""


def alert_hook(webhook_url: str | None) -> AlertHook:
    async def alert(letter: DeadLetter) -> None:
        # The dead-letter consumer has logged the letter at error level already (once).
        if webhook_url is None:
            return
        try:
            with httpx_unlogged():
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                    response = await client.post(webhook_url, json=_payload(letter))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The cause is dropped: its message and its own cause may quote the URL.
            raise AlertFailedError(
                f"the alert webhook could not be reached: {_reason(exc, webhook_url)}"
            ) from None
        if not response.is_success:
            raise AlertFailedError(f"the alert webhook answered {response.status_code}")

    return alert


def _reason(exc: Exception, url: str) -> str:
    """Why the POST failed, in words that name no part of the URL."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "ALERT_WEBHOOK_URL is not a valid http(s) URL"
    # Transport errors carry the socket's or the protocol's words ("connection refused"); a
    # message that quotes the host or the path anyway is replaced by a plain one.
    text = str(exc).strip()
    parsed = httpx.URL(url)
    if not text or any(part in text for part in (parsed.host, parsed.path) if len(part) > 1):
        return "the connection failed"
    return text


def _payload(letter: DeadLetter) -> dict[str, object]:
    return {
        "event": "job.dead_lettered",
        "jobId": str(letter.job_id),
        "queue": letter.source_queue,
        "attempts": letter.attempts,
        "error": {
            "code": letter.error.code,
            "type": letter.error.type,
            "message": letter.error.message,
        },
        "failedAt": letter.failed_at.isoformat(),
    }
