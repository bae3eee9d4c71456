"""One place that turns every failure into the error envelope:
{"error": {"code", "message", "details"?, "correlationId"}}."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from ..errors import ClipperError, NotFoundError, UnavailableError, ValidationFailedError

logger = logging.getLogger("clipper.api")

# Failures that mean "the database is not there right now": 503, never a 500 with a traceback.
DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    PoolTimeout,
    ConnectionError,
    OSError,
)


class HttpError(ClipperError):
    """A plain HTTP error of the framework (405 and the like)."""

    code = "HTTP_ERROR"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def envelope(request: Request, error: ClipperError) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    request_id = getattr(request.state, "correlation_id", None)
    body["correlationId"] = request_id
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if request_id:  # also on 500s, which Starlette sends from outside our middleware
        headers["X-Request-Id"] = request_id
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClipperError)
    async def clipper_error(request: Request, exc: ClipperError) -> JSONResponse:
        return envelope(request, exc)

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

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: %s", type(exc).__name__)
        return envelope(request, UnavailableError())

    # Registered by class, so they are handled inside the middleware (headers, metrics).
    for exception_class in DATABASE_DOWN:
        app.add_exception_handler(exception_class, database_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error", exc_info=exc)
        return envelope(request, ClipperError())


def _detail(error: Any) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    field = ".".join(location) or "body"
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        field, message = "body", "is not valid JSON"
    elif error.get("type") == "missing":
        message = "is required"
    return {"field": field, "message": message.removeprefix("Value error, ")}
