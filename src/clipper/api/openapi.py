"""The OpenAPI document's error answers, made from the error classes of clipper.errors, so a
status and its codes are written once: a route declares `responses=error_responses(…)`.
Every error is the envelope of api/errors.py `envelope()`, described here as ErrorEnvelope;
FastAPI's own 422 (`{"detail": [...]}`), which this API never sends, is taken out."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import Field
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from ..errors import (
    ClipperError,
    ClipTooLongError,
    ConflictError,
    LimitReachedError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    UrlSourcesDisabledError,
    ValidationFailedError,
)
from .schemas import Wire

JSON = "application/json"
EXAMPLE_CORRELATION_ID = "3b1e6f0c9a2d4e7f8b5c1d0e2f3a4b6c"


class FieldProblem(Wire, extra="forbid"):
    """One invalid field: `end`, or `clips[3].end` in a batch."""

    field: str
    message: str


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


class ErrorBody(Wire, extra="forbid"):
    code: str = Field(description="What went wrong, for programs: e.g. `NOT_FOUND`.")
    message: str = Field(description="What went wrong, for people.")
    # Absent (never null) unless fields are to blame: the schema has no null and no default.
    details: list[FieldProblem] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )
    correlation_id: str | None = Field(
        description="The request's X-Request-Id: it finds the server's log lines."
    )


class ErrorEnvelope(Wire, extra="forbid"):
    """Every error the API answers."""

    error: ErrorBody


# Raised by every route that takes an API key (ENABLE_API_KEYS), whose check reads the
# database, and by every route that reads the database itself.
KEYED: tuple[type[ClipperError], ...] = (UnauthorizedError, UnavailableError)
# Creating requests: counted against the key's rate, with a body under a size limit.
CREATING: tuple[type[ClipperError], ...] = (
    *KEYED,
    LimitReachedError,
    PayloadTooLargeError,
    ValidationFailedError,
)
# A request for clips, of one job or a batch: also too long a clip, a reused
# Idempotency-Key, a URL source while they are off.
CLIPS: tuple[type[ClipperError], ...] = (
    *CREATING,
    ClipTooLongError,
    ConflictError,
    UnsupportedMediaTypeError,
    UrlSourcesDisabledError,
)

_HEADERS: dict[type[ClipperError], dict[str, Any]] = {
    UnauthorizedError: {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
    },
    LimitReachedError: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error_responses(*classes: type[ClipperError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that raises `classes`, grouped by status, each with the
    envelope's schema, its codes in the description and an example per code; a 500 (a bug)
    is on every route."""
    by_status: dict[int, list[type[ClipperError]]] = {}
    every: tuple[type[ClipperError], ...] = (*classes, ClipperError)
    for error in every:
        if error not in by_status.setdefault(error.status, []):
            by_status[error.status].append(error)
    return {status: _response(found) for status, found in sorted(by_status.items())}


def _response(classes: list[type[ClipperError]]) -> dict[str, Any]:
    examples = {
        code: {"value": _example(error, code)}
        for error in classes
        if (code := _own_code(error)) is not None
    }
    headers = {name: spec for error in classes for name, spec in _HEADERS.get(error, {}).items()}
    response: dict[str, Any] = {
        "model": ErrorEnvelope,
        "description": " ".join(_describe(error) for error in classes),
        "content": {JSON: {"examples": examples}},
    }
    if headers:
        response["headers"] = headers
    return response


def _own_code(error: type[ClipperError]) -> str | None:
    """The class's code; None for LimitReachedError, whose errors each name their limit."""
    return None if error is LimitReachedError else error.code


def _message(error: type[ClipperError]) -> str:
    return (error.__doc__ or "").strip()


def _describe(error: type[ClipperError]) -> str:
    code = _own_code(error)
    return _message(error) if code is None else f"`{code}`: {_message(error)}"


def _example(error: type[ClipperError], code: str) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": _message(error)}
    if issubclass(error, ValidationFailedError):  # a 422 names the fields to fix
        body["details"] = [{"field": "end", "message": body["message"]}]
    body["correlationId"] = EXAMPLE_CORRELATION_ID
    return {"error": body}


_FASTAPI_422 = {"$ref": "#/components/schemas/HTTPValidationError"}


def install_openapi(app: FastAPI) -> None:
    """Serve the document without FastAPI's default 422: it adds one to every route with
    parameters that does not declare its own, in a shape this API never answers (the
    routes that validate declare the envelope's 422 through `error_responses`)."""
    build = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    default = operation["responses"].get("422", {})
                    if default.get("content", {}).get(JSON, {}).get("schema") == _FASTAPI_422:
                        del operation["responses"]["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
