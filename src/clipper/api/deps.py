"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..errors import ForbiddenError
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
