"""Server-Sent Events as the API sends them: sse-starlette's response with the keepalive
comment of docs/api.md, and the OpenAPI description of a stream route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

# A `: keepalive` comment this often on an idle stream: proxies and browsers close streams
# that say nothing for long (nginx's proxy_read_timeout is 60 s by default). Read at each
# request, so tests can shorten it.
KEEPALIVE_SECONDS = 15.0


def _keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive")


def event_stream(events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    return EventSourceResponse(
        events,
        ping=KEEPALIVE_SECONDS,
        ping_message_factory=_keepalive,
    )  # with Cache-Control: no-store and X-Accel-Buffering: no (nginx holds nothing back)


def stream_response(description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a stream route in the OpenAPI document."""
    return {
        200: {
            "description": description,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }
