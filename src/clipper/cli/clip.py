"""`clipper clip` and `clipper sample-video`: make a clip from a file in one command."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, cast

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..media.sample import write_sample_video
from ..settings import Settings
from ._runtime import fail, settings_or_exit

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api", help="The API's address (default CLIPPER_API_URL, else API_HOST:API_PORT)."
    ),
]


def clip(
    source: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A video or audio file.")
    ],
    start: Annotated[str, typer.Option(help="Start timecode, HH:MM:SS or HH:MM:SS.mmm.")],
    end: Annotated[str, typer.Option(help="End timecode, HH:MM:SS or HH:MM:SS.mmm.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to save the clip (default NAME_clip.mp4).")
    ] = None,
    priority: Annotated[str, typer.Option(help="fast, normal or bulk.")] = "normal",
    api: ApiOption = None,
) -> None:
    """Cut a clip from a file: upload it, make the job, follow its progress, download the clip.
    Needs a running Clipper (`clipper up`). With ENABLE_API_KEYS, set CLIPPER_API_KEY.

    Example: clipper clip talk.mp4 --start 00:12:03 --end 00:12:33 --out highlight.mp4
    """
    settings = settings_or_exit()
    target = out or source.with_name(f"{source.stem}_clip.mp4")
    headers = {"X-API-Key": key} if (key := os.environ.get("CLIPPER_API_KEY")) else {}
    with httpx.Client(base_url=api or _api_url(settings), headers=headers, timeout=60) as client:
        try:
            upload_key = _upload(client, source)
            job_id = _create(client, upload_key, start, end, priority)
            _follow(client, job_id)
            _download(client, job_id, target)
        except httpx.TransportError as exc:
            fail(f"cannot reach the Clipper API at {client.base_url} ({exc}); is it running?")
    typer.echo(f"clip saved to {target}")


def sample_video(
    path: Annotated[Path, typer.Argument(help="Where to write it (.mp4).")],
    seconds: Annotated[int, typer.Option(min=1, max=3600, help="Its length.")] = 60,
) -> None:
    """Write a test video (a moving test pattern and a tone) to try Clipper with."""
    write_sample_video(path, seconds)
    typer.echo(f"wrote {path} ({seconds} s)")


def _api_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    return os.environ.get("CLIPPER_API_URL", f"http://{host}:{settings.api_port}")


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    try:
        error = response.json()["error"]
        fail(f"{error['code']}: {error['message']}")
    except (ValueError, KeyError):
        fail(f"the API answered {response.status_code}")


def _upload(client: httpx.Client, source: Path) -> str:
    size = source.stat().st_size
    with _bar() as progress, source.open("rb") as file:
        task = progress.add_task("upload", total=size)
        # httpx only calls read() on an upload, which _Reading provides.
        reader = cast(BinaryIO, _Reading(file, progress, task))
        response = client.post("/api/uploads", files={"file": (source.name, reader)})
    return str(_check(response)["uploadKey"])


def _create(client: httpx.Client, upload_key: str, start: str, end: str, priority: str) -> str:
    body = {
        "sourceType": "upload",
        "uploadKey": upload_key,
        "start": start,
        "end": end,
        "priority": priority,
    }
    return str(_check(client.post("/api/jobs", json=body))["id"])


def _follow(client: httpx.Client, job_id: str) -> None:
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("queued", total=100)
        while True:
            job = _check(client.get(f"/api/jobs/{job_id}"))
            stage = _stage(client, job_id) if job["status"] == "processing" else job["status"]
            progress.update(task, completed=job["progress"], description=stage)
            if job["status"] == "done":
                return
            if job["status"] == "failed":
                progress.stop()
                fail(f"the job failed: {job['error']['code']}: {job['error']['message']}", code=1)
            time.sleep(0.25)


def _stage(client: httpx.Client, job_id: str) -> str:
    events = _check_list(client.get(f"/api/jobs/{job_id}/events"))
    stages = [e["payload"].get("stage") for e in events if e["type"] == "progress"]
    return str(stages[-1]) if stages else "starting"


def _check_list(response: httpx.Response) -> list[dict[str, Any]]:
    if not response.is_success:
        _check(response)
    items: list[dict[str, Any]] = response.json()
    return items


def _download(client: httpx.Client, job_id: str, target: Path) -> None:
    link = _check(client.get(f"/api/jobs/{job_id}/result"))["video"]["url"]
    with client.stream("GET", link) as response, _bar() as progress:
        if not response.is_success:
            response.read()
            _check(response)
        task = progress.add_task(
            "download", total=int(response.headers.get("content-length", 0)) or None
        )
        with target.open("wb") as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
                progress.advance(task, len(chunk))


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<8}"), BarColumn(), DownloadColumn(), transient=True
    )


class _Reading:
    """A file httpx reads for the upload, advancing a progress bar as it goes."""

    def __init__(self, file: BinaryIO, progress: Progress, task: TaskID) -> None:
        self._file, self._progress, self._task = file, progress, task

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._progress.advance(self._task, len(chunk))
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 20):
            yield chunk
