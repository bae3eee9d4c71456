"""Log set-up: JSON lines carrying the job id, with secrets redacted.

Hand-written because no maintained library both formats JSON and redacts credentials from
messages; it is one small formatter on the standard logging module.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .queue import current_job_id

_STANDARD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_SECRETS = (
    (re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
    (
        # signature= covers X-Amz-Signature= (a presigned URL's); X-Amz-Credential names the
        # access key, X-Amz-Security-Token is a session's secret.
        re.compile(
            r"(?i)\b(password|passwd|secret|token|api[_-]?key|signature|credential)=([^\s&\"]+)"
        ),
        r"\1=***",
    ),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1***"),
    (re.compile(r"\bck_[A-Za-z0-9]+_[A-Za-z0-9_-]+"), "ck_***"),
)


# The X-Request-Id of the HTTP request being served, for every log line it causes.
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "clipper_correlation_id", default=None
)


# Set while a request whose URL is a secret is sent (see httpx_unlogged).
_httpx_unlogged: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "clipper_httpx_unlogged", default=False
)


class _DropWhileUnlogged(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _httpx_unlogged.get()


_DROP_WHILE_UNLOGGED = _DropWhileUnlogged()


@contextlib.contextmanager
def httpx_unlogged() -> Iterator[None]:
    """Drop the records httpx makes inside (in this task only): its INFO line of each request
    names the full URL, and a callback URL may hold a secret in its path."""
    logging.getLogger("httpx").addFilter(_DROP_WHILE_UNLOGGED)  # a known filter is skipped
    token = _httpx_unlogged.set(True)
    try:
        yield
    finally:
        _httpx_unlogged.reset(token)


def redact(text: str) -> str:
    """Remove credentials (URL passwords, tokens, API keys) from a string."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        job_id = current_job_id()
        if job_id is not None:
            entry["job_id"] = str(job_id)
        request_id = correlation_id.get()
        if request_id is not None:
            entry["correlation_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_FIELDS:
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO, signed result URLs included.
    # botocore at DEBUG logs request headers and signing details.
    for noisy in (
        "psycopg.pool",
        "alembic.runtime.migration",
        "pgserver",
        "httpx",
        "botocore",
        "boto3",
        "s3transfer",
        "urllib3",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
