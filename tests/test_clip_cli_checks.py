"""`clipper clip` refuses a bad range or priority before it sends anything: the API, a local
server that records every request, never hears of it."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import clipper
from tests.local_server import serving


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._record()

            def do_POST(self) -> None:
                self._record()

            def _record(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                self.send_response(500)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def api() -> Iterator[_Recorder]:
    with serving(_Recorder()) as server:
        yield server


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--start", "0:00:01", "--end", "00:00:04"],
            "--start '0:00:01' must be a timecode HH:MM:SS or HH:MM:SS.mmm",
        ),
        (
            ["--start", "00:00:01", "--end", "00:00:61"],
            "--end '00:00:61' minutes and seconds must be below 60",
        ),
        (["--start", "00:00:05", "--end", "00:00:05"], "--end must be after --start"),
        (
            ["--range", "00:00:01-00:00:04", "--range", "00:00:02-1:00"],
            "--range '00:00:02-1:00': its end '1:00' must be a timecode HH:MM:SS or HH:MM:SS.mmm",
        ),
        (
            ["--range", "00:00:09-00:00:04"],
            "--range '00:00:09-00:00:04': its end must be after its start",
        ),
    ],
    ids=["bad start", "bad end", "empty span", "bad range end", "range backwards"],
)
def test_a_bad_range_exits_2_naming_the_option_before_any_request(
    api: _Recorder, tmp_path: Path, args: list[str], message: str
) -> None:
    source = tmp_path / "talk.mp4"
    source.write_bytes(b"never uploaded: the range is refused first")

    result = clipper("clip", str(source), *args, CLIPPER_API_URL=api.url)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"clipper: {message}"]
    assert api.requests == []


def test_priority_lists_its_choices_and_refuses_others(api: _Recorder, tmp_path: Path) -> None:
    assert "fast|normal|bulk" in clipper("clip", "--help").stdout
    source = tmp_path / "talk.mp4"
    source.write_bytes(b"never uploaded")
    result = clipper(
        "clip", str(source), "--start", "00:00:01", "--end", "00:00:02", "--priority", "urgent",
        CLIPPER_API_URL=api.url,
    )  # fmt: skip
    assert result.returncode == 2
    assert "urgent" in result.stderr
    assert api.requests == []


def test_a_good_range_does_reach_the_api(api: _Recorder, tmp_path: Path) -> None:
    """The recorder does hear a valid request: the tests above prove a refusal, not a deaf
    server."""
    source = tmp_path / "talk.mp4"
    source.write_bytes(b"sent, then refused by the recorder")
    result = clipper(
        "clip", str(source), "--start", "00:00:01", "--end", "00:00:02", CLIPPER_API_URL=api.url
    )
    assert result.returncode == 2
    assert api.requests == ["POST /api/uploads/resumable"]
