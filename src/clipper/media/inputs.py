"""What FFmpeg and the probe read a source from: a local file, or a URL they read by range."""

from __future__ import annotations

from pathlib import Path

# A local file, or an http:// URL FFmpeg reads by range (the relay of clipper.fetch.relay).
MediaInput = Path | str

# FFmpeg's http options for a URL input. Bounded range requests (`bytes=a-b`, smaller while
# it probes the header) on one kept-alive connection: an open-ended `bytes=a-` would have the
# relay, and the store behind it, send on until FFmpeg hangs up at its next seek, and an MP4
# with its index at the end is read from three places before the first packet. A read timeout
# (in microseconds): a relay whose store stalls fails the attempt (retried), never hangs it.
URL_READ_TIMEOUT_SECONDS = 30
URL_OPTIONS = {
    "multiple_requests": "1",
    "request_size": str(2**20),
    "initial_request_size": str(128 * 2**10),
    "rw_timeout": str(URL_READ_TIMEOUT_SECONDS * 1_000_000),
}


def input_options(source: MediaInput) -> dict[str, str]:
    """FFmpeg's options for opening `source` (the probe's PyAV takes them as a dict)."""
    return {} if isinstance(source, Path) else URL_OPTIONS


def input_arguments(source: MediaInput) -> list[str]:
    """`-i source`, after the options a URL takes."""
    options = [
        part for name, value in input_options(source).items() for part in (f"-{name}", value)
    ]
    return [*options, "-i", str(source)]
