"""The statuses the API answers in tests, against those its OpenAPI document declares.

Every in-process request of the API tests reaches the app through httpx's ASGITransport:
tests/api/conftest.py hands it the app wrapped by `watching`, which notes (method, route as
the document names it, status), and `undeclared` lists those the document does not declare
for their route."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (method, path as in the document's `paths`, e.g. "/api/jobs/{job_id}", status)
Observed = tuple[str, str, int]


def watching(app: ASGIApp, observed: set[Observed]) -> ASGIApp:
    """`app`, noting the route and status of each response. The route is the one the router
    picked (it leaves it in the scope); a request refused before routing (a 413 by its
    Content-Length) names none and is not noted."""

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        statuses: list[int] = []

        async def send_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_noting)
        finally:
            route = scope.get("route")
            if isinstance(route, APIRoute) and route.include_in_schema and statuses:
                observed.add((scope["method"].lower(), route.path_format, statuses[0]))

    return watched


def undeclared(observed: set[Observed], document: dict[str, Any]) -> list[Observed]:
    """The observed statuses that the document does not declare for their operation."""
    paths = document["paths"]
    return sorted(
        (method, path, status)
        for method, path, status in observed
        if path in paths and str(status) not in paths[path].get(method, {}).get("responses", {})
    )
