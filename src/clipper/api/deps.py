"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..errors import ForbiddenError, UnsupportedMediaTypeError
from .auth import Caller
from .resources import Resources


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_caller(request: Request, resources: ResourcesDep) -> Caller:
    authorization = request.headers.get("authorization", "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    return await resources.keys.authenticate(token or request.headers.get("x-api-key"))


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_admin(caller: CallerDep) -> Caller:
    if not caller.is_admin:
        raise ForbiddenError()
    return caller


AdminDep = Annotated[Caller, Depends(get_admin)]


def json_body(request: Request) -> None:
    """A route that reads a JSON body refuses any other kind with a 415, which says what to
    send, where FastAPI would try to validate the bytes and answer a puzzling 422. A body
    without a Content-Type is read as JSON, as FastAPI does."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaTypeError()
