"""Short-lived signed URLs for results: HMAC-SHA256 over the path and its expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time

from pydantic import SecretStr

logger = logging.getLogger("clipper.signing")

# Expiries are epoch seconds in plain ASCII decimal; twelve digits last until the year 33658,
# and the cap keeps int() away from huge or non-ASCII digit strings (both would parse).
_EXPIRES_DIGITS = 12


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

    def valid(self, path: str, expires: str, signature: str) -> bool:
        """Whether `signature` signs `path` until `expires`, both as a link spells them, and
        that time has not passed. Anything malformed is simply not valid."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= _EXPIRES_DIGITS):
            return False
        if not signature.isascii() or int(expires) < time.time():
            return False
        # Signatures are URL-safe base64, so ASCII. Compared as bytes in constant time; one of
        # another length is simply unequal.
        expected = self.signature(path, int(expires)).encode()
        return hmac.compare_digest(expected, signature.encode())


# The key when SIGNING_KEY is unset: one per process, so what a process signs it verifies
# itself (`clipper up` runs the API and the worker in one), and no other process does.
_PROCESS_KEY = secrets.token_bytes(32)


def key_or_process_key(configured: SecretStr | None, signed: str) -> bytes:
    """SIGNING_KEY's bytes; when it is unset, this process's own key, with a warning that
    `signed` (what the caller signs, e.g. "result links") is signed with it."""
    if configured is not None:
        return configured.get_secret_value().encode()
    logger.warning("SIGNING_KEY is unset: %s are signed with a key of this process", signed)
    return _PROCESS_KEY
