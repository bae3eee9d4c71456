"""Which encoders the shipped FFmpeg has (`ffmpeg -encoders`), asked once per process."""

from __future__ import annotations

import subprocess
from functools import cache

from .ffmpeg import ffmpeg_path

_LIST_TIMEOUT_SECONDS = 10.0


@cache
def ffmpeg_encoders() -> frozenset[str]:
    """The names of the encoders FFmpeg lists (`libx264`, `libsvtav1`, `aac`, …). About 20 ms,
    once: the binary does not change while the process runs."""
    listed = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-encoders"],
        capture_output=True,
        check=True,
        timeout=_LIST_TIMEOUT_SECONDS,
        env={},
    ).stdout.decode(errors="replace")
    return parse_encoders(listed)


def parse_encoders(listed: str) -> frozenset[str]:
    """From `ffmpeg -encoders`: a legend, a `------` line, then ` V....D name  description`."""
    _, _, table = listed.partition("------")
    names = set()
    for line in table.splitlines():
        flags, _, rest = line.strip().partition(" ")
        name = rest.strip().split(" ", 1)[0]
        if len(flags) == 6 and name:
            names.add(name)
    return frozenset(names)
