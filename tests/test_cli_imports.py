"""`clipper --help` and each group's help import none of the heavy libraries: every command
imports them in its body, when it runs (see clipper/cli/__init__.py). Checked on the modules
imported, as `python -X importtime` lists them, not on a timing."""

from __future__ import annotations

import subprocess

import pytest

from tests.cli_helpers import CLIPPER, ROOT, environment

# Not pydantic: typer itself imports it to coerce a command's parameters, even for --help.
HEAVY = {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg_pool",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic_settings",
    "httpx",
    "av",
    "yt_dlp",
    "imageio_ffmpeg",
    "prometheus_client",
}
# Clipper's own layers that pull them in.
HEAVY_LAYERS = {"clipper.db", "clipper.queue", "clipper.api", "clipper.worker", "clipper.media"}


def _imported(*args: str) -> set[str]:
    result = subprocess.run(
        [CLIPPER[0], "-X", "importtime", *CLIPPER[1:], *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout
    # Lines read `import time: <self us> | <cumulative us> | <indented module name>`.
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "command",
    [[], ["up"], ["clip"], ["seed"], ["dlq"], ["dlq", "list"], ["keys"], ["db"], ["queue"]],
    ids=lambda c: " ".join(c) or "clipper",
)
def test_help_imports_no_heavy_module(command: list[str]) -> None:
    imported = _imported(*command, "--help")

    assert "clipper.cli" in imported  # the listing is real: the command line was imported
    heavy = {name for name in imported if name.split(".")[0] in HEAVY}
    layers = {name for name in imported if ".".join(name.split(".")[:2]) in HEAVY_LAYERS}
    assert heavy | layers == set()
