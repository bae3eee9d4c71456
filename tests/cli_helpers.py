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
