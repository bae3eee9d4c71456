"""ASGI middleware: a correlation id per request, a cap on body size, HTTP metrics."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PayloadTooLargeError
from ..logs import correlation_id
from .metrics import HttpMetrics

# fullmatch: `$` would also accept a trailing newline, echoed into a header and log lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The most bytes a request body may have, and how the 413 names that limit (with the
    setting that sets it), e.g. "64 KiB (MAX_REQUEST_BYTES)"."""

    bytes: int
    named: str


class RequestContextMiddleware:
    """Accepts a sane X-Request-Id (or makes one), echoes it, puts it in every log line; refuses
    bodies over `max_body`, by Content-Length or while streaming; counts requests."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: BodyLimit,
        metrics: HttpMetrics,
        max_body_under: dict[str, BodyLimit] | None = None,
    ) -> None:
        """`max_body_under`: other limits for the paths at or under a prefix (`/api/uploads`
        covers `/api/uploads/resumable/{id}` too), the longest prefix first."""
        self.app = app
        self.max_body = max_body
        self.max_body_under = sorted(
            (max_body_under or {}).items(), key=lambda item: len(item[0]), reverse=True
        )
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        token = correlation_id.set(request_id)
        scope.setdefault("state", {})["correlation_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in response_headers):
                    response_headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = response_headers
            await send(message)

        try:
            limit = self._limit(scope["path"])
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit.bytes:
                await _refuse_too_large(send_with_id, request_id, limit)
                return
            await self._call_limited(scope, receive, send_with_id, request_id, limit)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.seconds.labels(scope["method"], route).observe(
                time.perf_counter() - started
            )
            correlation_id.reset(token)

    def _limit(self, path: str) -> BodyLimit:
        for prefix, limit in self.max_body_under:
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_body

    async def _call_limited(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, limit: BodyLimit
    ) -> None:
        """Count the body as it streams in; past the cap, tell the app the client left (the
        framework would turn an exception into its own 400), drop its reply, answer 413."""
        received = 0
        exceeded = False

        async def receive_limited() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit.bytes:
                exceeded = True
                return {"type": "http.disconnect"}
            return message

        async def send_unless_exceeded(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, receive_limited, send_unless_exceeded)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await _refuse_too_large(send, request_id, limit)


async def _refuse_too_large(send: Send, request_id: str, limit: BodyLimit) -> None:
    error = PayloadTooLargeError(f"the request body is over {limit.named}")
    body = json.dumps(
        {"error": {"code": error.code, "message": error.message, "correlationId": request_id}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
