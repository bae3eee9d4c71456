"""API key tokens `ck_<id>_<secret>`: made here, stored as a scrypt hash, checked in constant
time. The standard library's scrypt is the slow hash: no extra dependency is needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# fullmatch with explicit ASCII classes: `$` would also accept a trailing newline.
_TOKEN = re.compile(r"ck_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_N, _R, _P = 2**14, 8, 1  # about 16 MiB and tens of milliseconds per check


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    token: str  # shown once, never stored
    secret_hash: str


def make_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"ck_{key_id}_{secret}", hash_secret(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encoded_salt, encoded_digest = (base64.b64encode(part).decode() for part in (salt, digest))
    return f"scrypt${_N}${_R}${_P}${encoded_salt}${encoded_digest}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(
        secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(actual, base64.b64decode(digest))
