"""Alerts for dead letters: a webhook POST when ALERT_WEBHOOK_URL is set (the dead-letter
consumer logs every letter once, at error level, before it calls this). A failed POST raises,
so the DLQ consumer retries it with backoff; it never stops the consumer."""

from __future__ import annotations

import httpx

from ..queue import AlertHook, DeadLetter


def alert_hook(webhook_url: str | None) -> AlertHook:
    async def alert(letter: DeadLetter) -> None:
        # The dead-letter consumer has logged the letter at error level already (once).
        if webhook_url is None:
            return
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(webhook_url, json=_payload(letter))
            response.raise_for_status()

    return alert


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
