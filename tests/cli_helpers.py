"""Run the real `clipper` command in a subprocess, with a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLIPPER = [sys.executable, "-m", "clipper.cli"]
ROOT = Path(__file__).resolve().parents[1]


def environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "PG_BOSS"))}
    env.update({"LOG_FORMAT": "json", "COLUMNS": "200", **overrides})
    return env


def clipper(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLIPPER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(**env),
        cwd=ROOT,
    )


def start_clipper_up(
    db_url: str, *, command: str = "up", **env: str
) -> tuple[subprocess.Popen[str], str]:
    """`clipper up` (or `command`, e.g. `api`) on a test database with the API on a free
    port: the process and the API's address, once it listens."""
    process = subprocess.Popen(
        [*CLIPPER, command],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(DATABASE_URL=db_url, API_PORT="0", **env),
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("Clipper API on "):
            return process, line.split()[3]
    raise AssertionError(f"clipper up did not start: {process.communicate()}")
