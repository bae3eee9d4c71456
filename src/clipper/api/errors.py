"""One place that turns every failure into the error envelope:
{"error": {"code", "message", "details"?, "correlationId"}}."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from ..errors import (
    ClipperError,
    LimitReachedError,
    NotFoundError,
    StorageFullError,
    UnavailableError,
    ValidationFailedError,
    is_disk_full,
)

logger = logging.getLogger("clipper.api")

# Failures that mean "the database is not there right now": 503, never a 500 with a traceback.
# Other OSErrors (sockets, timeouts) too, unless they say the disk is full: see os_error.
DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    PoolTimeout,
    ConnectionError,
)


class HttpError(ClipperError):
    """A plain HTTP error of the framework (405 and the like)."""

    code = "HTTP_ERROR"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def envelope(request: Request, error: ClipperError) -> JSONResponse:
    # Documented as openapi.ErrorEnvelope: tests/api/test_openapi.py holds answers to it.
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    request_id = getattr(request.state, "correlation_id", None)
    body["correlationId"] = request_id
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if isinstance(error, LimitReachedError):
        headers["Retry-After"] = str(error.retry_after)
    if request_id:  # also on 500s, which Starlette sends from outside our middleware
        headers["X-Request-Id"] = request_id
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClipperError)
    async def clipper_error(request: Request, exc: ClipperError) -> JSONResponse:
        return envelope(request, exc)

    @app.exception_handler(StorageFullError)
    async def storage_full(request: Request, exc: StorageFullError) -> JSONResponse:
        return _storage_full(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_detail(error) for error in exc.errors()]
        first = details[0] if details else {"field": "body", "message": "invalid"}
        failure = ValidationFailedError(f"{first['field']}: {first['message']}", details)
        return envelope(request, failure)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return envelope(request, NotFoundError("no such resource"))
        return envelope(request, HttpError(exc.status_code, str(exc.detail)))

    # Registered by class, so they are handled inside the middleware (headers, metrics).
    for exception_class in DATABASE_DOWN:
        app.add_exception_handler(exception_class, _database_down)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        # A full disk that no storage call translated (a temporary file, say) is still 507:
        # calling it a database outage would send the operator to the wrong machine.
        if is_disk_full(exc):
            return _storage_full(request, StorageFullError("a local disk"))
        return await _database_down(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this from outside RequestContextMiddleware, which has reset the
        # request's correlation id by now: the line names it itself, as the envelope does.
        logger.error(
            "unexpected error",
            exc_info=exc,
            extra={"correlation_id": getattr(request.state, "correlation_id", None)},
        )
        return envelope(request, ClipperError())


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", type(exc).__name__)
    return envelope(request, UnavailableError())


def _storage_full(request: Request, error: StorageFullError) -> JSONResponse:
    logger.error("storage full: no space left on %s; answering 507", error.where)
    return envelope(request, error)


def field_name(location: Sequence[str | int]) -> str:
    """A field as the API names it in errors: `end`, or `clips[3].end` (the 4th clip's)."""
    parts = (f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
    return "".join(parts).removeprefix(".")


def _detail(error: Any) -> dict[str, str]:
    location = [part for part in error.get("loc", ()) if part not in ("body", "query")]
    field = field_name(location) or "body"
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        field, message = "body", "is not valid JSON"
    elif error.get("type") == "missing":
        message = "is required"
    return {"field": field, "message": message.removeprefix("Value error, ")}
