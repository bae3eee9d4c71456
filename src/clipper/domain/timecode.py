"""Timecodes `HH:MM:SS(.mmm)` <-> milliseconds (stored as milliseconds: nothing is lost)."""

from __future__ import annotations

import re

# ASCII digits only (`\d` would take any script's), matched whole (`$` would let a trailing
# newline through).
_TIMECODE = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,3}))?")


def parse_timecode(text: str) -> int:
    """Milliseconds of `HH:MM:SS` or `HH:MM:SS.mmm`; ValueError with a reason otherwise."""
    match = _TIMECODE.fullmatch(text)
    if match is None:
        raise ValueError("must be a timecode HH:MM:SS or HH:MM:SS.mmm")
    hours, minutes, seconds = (int(part) for part in match.group(1, 2, 3))
    if minutes > 59 or seconds > 59:
        raise ValueError("minutes and seconds must be below 60")
    millis = int((match.group(4) or "0").ljust(3, "0"))
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def format_timecode(milliseconds: int) -> str:
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"
