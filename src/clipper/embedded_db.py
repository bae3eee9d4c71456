"""An embedded PostgreSQL for development and tests when DATABASE_URL is unset.

The server binaries come from the `pgserver` wheel (extra `embedded`); data lives under
`.clipper/pgdata` in the working directory (git-ignored). Nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger("clipper")

DEFAULT_DATA_DIR = Path(".clipper") / "pgdata"


class EmbeddedDatabaseUnavailableError(RuntimeError):
    pass


def start_embedded_postgres(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """Start (or reuse) the embedded server and return its libpq URL.

    The server keeps running for other processes using the same folder and stops when the
    last of them exits.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; /tmp is fine here.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise EmbeddedDatabaseUnavailableError(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or install it with: pip install -e '.[embedded]'"
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver exports get_server without declaring it for type checkers.
    get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
    server = get_server(data_dir.resolve(), cleanup_mode="stop")
    url = str(server.get_uri())
    logger.info("using the embedded PostgreSQL in %s", data_dir)
    return url


def resolve_database_url(configured: str | None) -> str:
    """DATABASE_URL when set; otherwise the embedded server (started on demand)."""
    return configured if configured else start_embedded_postgres()
