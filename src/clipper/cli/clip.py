"""`clipper clip` and `clipper sample-video`: make a clip from a file in one command."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..domain.clips import CutMode
from ..domain.jobs import Priority
from ..domain.timecode import parse_timecode
from ._runtime import fail, settings_or_exit

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings

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
    start: Annotated[
        str | None, typer.Option(help="Start timecode, HH:MM:SS or HH:MM:SS.mmm.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End timecode, HH:MM:SS or HH:MM:SS.mmm.")] = None,
    ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="A clip as START-END (e.g. 00:01:00-00:01:30) instead of --start/--end; "
            "repeat it for more clips of the file, made as one batch (up to the API's "
            "batch limit, see docs/api.md).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to save the clip (default NAME_clip.mp4, or the extension of the "
            "clip's container, e.g. .m4a for an audio file); with several ranges, numbered: "
            "NAME_clip_1.mp4, NAME_clip_2.mp4, …"
        ),
    ] = None,
    priority: Annotated[
        Priority, typer.Option(help="The queue runs fast jobs before normal before bulk.")
    ] = Priority.NORMAL,
    cut: Annotated[
        CutMode,
        typer.Option(
            help="exact: from the frame on screen at --start (re-encodes unless it is a "
            "keyframe); fast: from the keyframe at or before it, always stream copy (it may "
            "start seconds early: the saved line says where)."
        ),
    ] = CutMode.EXACT,
    subtitles: Annotated[
        bool,
        typer.Option(
            "--subtitles",
            help="Subtitles too, saved beside the clip as NAME_clip.srt: from the file's own "
            "subtitle track in --subtitle-lang, else transcribed from its speech.",
        ),
    ] = False,
    subtitle_lang: Annotated[
        str,
        typer.Option(
            help="The subtitles' language, e.g. en or pt-BR (implies --subtitles); auto: the "
            "first track, or the language the speech model hears."
        ),
    ] = "auto",
    burn: Annotated[
        bool,
        typer.Option("--burn", help="Burn the subtitles into the video (implies --subtitles)."),
    ] = False,
    api: ApiOption = None,
) -> None:
    """Cut clips from a file: upload it, make the jobs, follow their progress, download the
    clips. Needs a running Clipper (`clipper up`). With ENABLE_API_KEYS, set CLIPPER_API_KEY.

    Example: clipper clip talk.mp4 --start 00:12:03 --end 00:12:33 --out highlight.mp4

    Several: clipper clip talk.mp4 --range 00:01:00-00:01:30 --range 00:05:00-00:05:20

    Subtitles too: clipper clip talk.mp4 --start 00:12:03 --end 00:12:33 --subtitles
    """
    # Checked before anything is uploaded: the API would refuse a bad range only after the
    # whole file had been sent.
    spans = _spans(start, end, ranges or [])
    import httpx

    settings = settings_or_exit()
    headers = {"X-API-Key": key} if (key := os.environ.get("CLIPPER_API_KEY")) else {}
    with httpx.Client(base_url=api or _api_url(settings), headers=headers, timeout=60) as client:
        try:
            upload_key = _upload(client, source)
            wanted = subtitles or burn or subtitle_lang != "auto"
            asked = _subtitles_asked(wanted, subtitle_lang, burn)
            job_ids = _create(client, upload_key, spans, priority, cut, asked)
            jobs = _follow(client, job_ids)
            targets = []
            for n, job_id in enumerate(job_ids, 1):
                links = _check(client.get(f"/api/jobs/{job_id}/result"))
                targets.append(_target(out, source, links["video"]["url"], n, len(job_ids)))
                _download(client, links["video"]["url"], targets[-1])
                if links.get("subtitles"):
                    _download(client, links["subtitles"]["url"], targets[-1].with_suffix(".srt"))
        except httpx.TransportError as exc:
            fail(f"cannot reach the Clipper API at {client.base_url} ({exc}); is it running?")
    for job_id, saved_as in zip(job_ids, targets, strict=True):
        job = jobs[job_id]
        moved = job.get("actualStart") not in (None, job["start"])
        typer.echo(f"clip saved to {saved_as}" + (f" (from {job['actualStart']})" if moved else ""))
        if (made := job.get("subtitles")) is not None:
            typer.echo(f"subtitles saved to {saved_as.with_suffix('.srt')} ({_told(made)})")


def sample_video(
    path: Annotated[Path, typer.Argument(help="Where to write it (.mp4).")],
    seconds: Annotated[int, typer.Option(min=1, max=3600, help="Its length.")] = 60,
) -> None:
    """Write a test video (a moving test pattern and a tone) to try Clipper with."""
    from ..media.sample import write_sample_video

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
    """A resumable upload (tus, see _resumable.py): a dropped connection is resumed where the
    server stands, a few times in a row at most."""
    from ._resumable import UploadFailedError, UploadRefusedError, upload

    # Kept on screen when done (bytes, rate, time), unlike the download's.
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("upload", total=source.stat().st_size)
        try:
            return upload(
                client,
                source,
                on_progress=lambda sent: progress.update(task, completed=sent),
                on_event=lambda line: progress.console.print(line, highlight=False),
            )
        except UploadRefusedError as refused:
            progress.stop()
            _check(refused.response)
            raise  # a refusal _check would pass: none is
        except UploadFailedError as failed:
            progress.stop()
            fail(str(failed), code=1)


def _spans(start: str | None, end: str | None, ranges: list[str]) -> list[tuple[str, str]]:
    """The clips asked for, as (start, end): --start with --end, or each --range, each a
    valid span (exit 2 naming the option otherwise)."""
    if ranges and (start is not None or end is not None):
        fail("give either --start and --end, or --range, not both")
    if not ranges:
        if start is None or end is None:
            fail("give --start and --end, or one --range START-END per clip")
        _check_span(start, end)
        return [(start, end)]
    from ..api.schemas import BATCH_MAX_CLIPS

    if len(ranges) > BATCH_MAX_CLIPS:
        fail(f"--range: at most {BATCH_MAX_CLIPS} clips, the most one batch takes")
    spans = []
    for text in ranges:
        first, separator, last = text.partition("-")
        if not separator or not first or not last:
            fail(f"--range {text!r}: write it as START-END, e.g. 00:01:00-00:01:30")
        _check_span(first, last, text)
        spans.append((first, last))
    return spans


def _check_span(start: str, end: str, range_text: str | None = None) -> None:
    """Exit 2 unless `start` and `end` are timecodes with the end after the start, as the API
    checks them; the message names --start/--end, or the --range `range_text`."""
    prefix = "" if range_text is None else f"--range {range_text!r}: "
    names = ("--start", "--end") if range_text is None else ("its start", "its end")
    millis = []
    for name, text in zip(names, (start, end), strict=True):
        try:
            millis.append(parse_timecode(text))
        except ValueError as exc:
            fail(f"{prefix}{name} {text!r} {exc}")
    if millis[1] <= millis[0]:
        fail(f"{prefix}{names[1]} must be after {names[0]}")


def _target(out: Path | None, source: Path, link: str, n: int, count: int) -> Path:
    """Where clip `n` of `count` is saved: `out`, else NAME_clip with the clip's own extension
    (its container: .mp4, .webm, .m4a, ...), numbered when there are several."""
    import httpx

    target = out or source.with_name(f"{source.stem}_clip{Path(httpx.URL(link).path).suffix}")
    return target if count == 1 else target.with_name(f"{target.stem}_{n}{target.suffix}")


def _subtitles_asked(wanted: bool, language: str, burn: bool) -> dict[str, Any]:
    """The request's subtitle fields (none without --subtitles)."""
    if not wanted:
        return {}
    return {"withSubtitles": True, "subtitleLang": language, "burnSubtitles": burn}


def _told(made: dict[str, Any]) -> str:
    """Where a job's subtitles came from, as the saved line says it."""
    origin = {
        "sidecar": "from the uploaded .srt",
        "track": "from the file's subtitle track",
        "speech": f"from speech, {made.get('model')}",
    }.get(str(made["source"]), str(made["source"]))
    language = f", {made['language']}" if made.get("language") else ""
    cues = int(made["cues"])
    said = f"{origin}{language}, {cues} cue{'' if cues == 1 else 's'}"
    return f"{said}: {made['note']}" if made.get("note") else said


def _create(
    client: httpx.Client,
    upload_key: str,
    spans: list[tuple[str, str]],
    priority: Priority,
    cut: CutMode,
    subtitles: dict[str, Any],
) -> list[str]:
    """One job (POST /api/jobs), or several as one batch (POST /api/jobs/batch): their ids."""
    source = {
        "sourceType": "upload",
        "uploadKey": upload_key,
        "priority": priority.value,
        "cut": cut.value,
        **subtitles,
    }
    if len(spans) > 1:
        clips = [{"start": start, "end": end} for start, end in spans]
        batch = _check(client.post("/api/jobs/batch", json={**source, "clips": clips}))
        return [str(job["id"]) for job in batch["jobs"]]
    [(start, end)] = spans
    job = _check(client.post("/api/jobs", json={**source, "start": start, "end": end}))
    return [str(job["id"])]


def _follow(client: httpx.Client, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """One bar over all the jobs: their progress summed; the stage of a single job, or how
    many of several are done. Returns the jobs as they ended (all done)."""
    with Progress(
        TextColumn("{task.description:<10}"),  # the longest stage: transcribe
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("queued", total=100 * len(job_ids))
        jobs: dict[str, dict[str, Any]] = {}
        while True:
            for job_id in job_ids:
                if jobs.get(job_id, {}).get("status") != "done":
                    jobs[job_id] = _check(client.get(f"/api/jobs/{job_id}"))
            progress.update(
                task,
                completed=sum(job["progress"] for job in jobs.values()),
                description=_description(client, job_ids, jobs),
            )
            for n, job_id in enumerate(job_ids, 1):
                if (job := jobs[job_id])["status"] == "failed":
                    progress.stop()
                    which = "the job" if len(job_ids) == 1 else f"clip {n}"
                    error = job["error"]
                    fail(f"{which} failed: {error['code']}: {error['message']}", code=1)
            if all(job["status"] == "done" for job in jobs.values()):
                return jobs
            time.sleep(0.25)


def _description(client: httpx.Client, job_ids: list[str], jobs: dict[str, dict[str, Any]]) -> str:
    if len(job_ids) > 1:
        done = sum(job["status"] == "done" for job in jobs.values())
        return f"{done}/{len(job_ids)} done"
    job = jobs[job_ids[0]]
    return _stage(client, job_ids[0]) if job["status"] == "processing" else str(job["status"])


def _stage(client: httpx.Client, job_id: str) -> str:
    events = _check_list(client.get(f"/api/jobs/{job_id}/events"))
    stages = [e["payload"].get("stage") for e in events if e["type"] == "progress"]
    return str(stages[-1]) if stages else "starting"


def _check_list(response: httpx.Response) -> list[dict[str, Any]]:
    if not response.is_success:
        _check(response)
    items: list[dict[str, Any]] = response.json()
    return items


def _download(client: httpx.Client, link: str, target: Path) -> None:
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
