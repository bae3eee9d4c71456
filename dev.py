#!/usr/bin/env python3
"""Clipper's one entry point for people and CI; needs nothing but Python 3.11+.

    python3 dev.py run      # the service: API, worker and dead-letter consumer (clipper up)
    python3 dev.py test     # the test suite (pytest arguments may follow)
    python3 dev.py check    # ruff, mypy and the import-linter layer contracts

Each verb first makes .venv and installs the project into it (again only when pyproject.toml
changes). Without DATABASE_URL, both `run` and `test` use an embedded PostgreSQL whose
binaries come from the `pgserver` wheel (data under .clipper/, git-ignored).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".clipper-installed"


def ensure_environment() -> None:
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing Clipper and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev,embedded,asr]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    return subprocess.call(list(command), cwd=ROOT)


def become(*command: str) -> None:
    """Replace this process with `command`, so Ctrl-C and SIGTERM reach it directly."""
    os.chdir(ROOT)
    os.execv(command[0], list(command))


def main() -> int:
    verb, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if verb not in {"run", "test", "check"}:
        print(__doc__)
        return 2
    ensure_environment()
    if verb == "run":
        become(str(BIN / "clipper"), "up", "--migrate", *args)
    if verb == "test":
        become(str(BIN / "python"), "-m", "pytest", *args)
    return (
        run(str(BIN / "ruff"), "check", ".")
        or run(str(BIN / "ruff"), "format", "--check", ".")
        or run(str(BIN / "mypy"))
        or run(str(BIN / "lint-imports"))
    )


if __name__ == "__main__":
    sys.exit(main())
