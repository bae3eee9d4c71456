"""Short-lived signed URLs for results: HMAC-SHA256 over the path and its expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, path: str, ttl_seconds: int) -> tuple[str, int]:
        """A query string `expires=…&signature=…` for `path`, and the expiry (epoch seconds)."""
        expires = int(time.time()) + ttl_seconds
        return f"expires={expires}&signature={self.signature(path, expires)}", expires

    def valid(self, path: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self.signature(path, expires), signature)
