"""The HTTP API: `create_app(settings, ...)`; one router per resource."""

from .app import create_app

__all__ = ["create_app"]
