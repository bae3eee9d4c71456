"""Refused at the door: an upload records what its probe found (duration, streams, codecs),
and a job that cannot work with it (a range past its end, subtitles in a language it has no
track for and the speech model cannot hear) is a 422 naming the field, before anything is
stored or queued. A truncated or corrupt upload is refused, named as such, without a server
path."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from clipper.media.ffmpeg import ffmpeg_path
from tests.api.conftest import SAMPLE_UPLOAD_KEY, ApiFactory
from tests.media_files import make_video

# Its last cue ends with the video: FFmpeg's -shortest would otherwise end the file there.
SUBTITLES = "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n2\n00:00:09,000 --> 00:00:10,000\nBye\n"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("refusals")
    plain = make_video(folder / "plain.mp4", 10)
    # Its index (moov) first, as a streaming-friendly file has it, so a cut-off copy still
    # opens and promises all 10 s.
    indexed_first = folder / "faststart.mp4"
    remux = ["-c", "copy", "-movflags", "+faststart", str(indexed_first)]
    subprocess.run(
        [ffmpeg_path(), "-y", "-loglevel", "error", "-i", str(plain), *remux], check=True
    )
    data = indexed_first.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "plain": plain,
        "subtitled": make_video(folder / "subtitled.mp4", 10, subtitles=SUBTITLES),
        "truncated": truncated,
    }


async def _upload(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    data = await asyncio.to_thread(path.read_bytes)
    return await client.post("/api/uploads", files={"file": (path.name, data, "video/mp4")})


async def _key(client: httpx.AsyncClient, path: Path) -> str:
    uploaded = await _upload(client, path)
    assert uploaded.status_code == 201, uploaded.text
    key: str = uploaded.json()["uploadKey"]
    return key


def _job(key: str, start: str = "00:00:02", end: str = "00:00:06", **more: Any) -> dict[str, Any]:
    return {"sourceType": "upload", "uploadKey": key, "start": start, "end": end, **more}


def _refused_field(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    return detail["field"], detail["message"]


def _nothing_queued(db_url: str) -> bool:
    with psycopg.connect(db_url) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
        messages = conn.execute("SELECT count(*) FROM clipper_queue.messages").fetchone()
    return jobs == (0,) and messages == (0,)


async def test_an_upload_answers_and_records_what_it_holds(
    client: httpx.AsyncClient, sources: dict[str, Path], db_url: str
) -> None:
    uploaded = await _upload(client, sources["subtitled"])
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert abs(body["durationMs"] - 10_000) <= 100
    assert (body["videoCodec"], body["audioCodec"]) == ("h264", "aac")
    assert (body["width"], body["height"], body["bitDepth"], body["hdr"]) == (320, 240, 8, False)
    assert body["subtitleLanguages"] == ["eng"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT media FROM uploads WHERE key = %s", (body["uploadKey"],)
        ).fetchone()
    assert row is not None
    media = row[0]
    assert (media["duration_ms"], media["video_codec"]) == (body["durationMs"], "h264")
    assert media["subtitle_languages"] == ["eng"]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("00:00:02", "00:00:12", "end"),  # ends 2 s past a 10 s source
        ("00:00:10", "00:00:11", "start"),  # starts at its very end: the start is at fault
        ("00:00:30", "00:00:40", "start"),
    ],
)
async def test_a_range_outside_the_upload_is_refused_before_anything_is_queued(
    client: httpx.AsyncClient,
    sources: dict[str, Path],
    db_url: str,
    start: str,
    end: str,
    field: str,
) -> None:
    key = await _key(client, sources["plain"])
    refused = await client.post("/api/jobs", json=_job(key, start, end))
    named, message = _refused_field(refused)
    assert named == field
    assert "the source lasts 00:00:10" in message
    assert _nothing_queued(db_url)
    # The edge itself fits: a clip to the source's last frame.
    assert (
        await client.post("/api/jobs", json=_job(key, "00:00:08", "00:00:10"))
    ).status_code == 202


async def test_a_batch_names_the_clip_whose_range_does_not_fit(
    client: httpx.AsyncClient, sources: dict[str, Path], db_url: str
) -> None:
    key = await _key(client, sources["plain"])
    clips = [{"start": "00:00:01", "end": "00:00:03"}, {"start": "00:00:05", "end": "00:00:15"}]
    refused = await client.post(
        "/api/jobs/batch", json={"sourceType": "upload", "uploadKey": key, "clips": clips}
    )
    assert _refused_field(refused)[0] == "clips[1].end"
    assert _nothing_queued(db_url)  # one clip refused, and none is made


async def test_subtitles_without_a_track_or_a_sidecar_need_a_language_the_model_hears(
    client: httpx.AsyncClient, sources: dict[str, Path], db_url: str, data_dir: Path
) -> None:
    """No sidecar and no track in the language: the subtitles come from speech, so only a
    language the speech model (the packaged tiny.en: English) cannot do is refused."""
    plain = await _key(client, sources["plain"])
    subtitled = await _key(client, sources["subtitled"])  # its one track is English
    for key, track in ((plain, "no subtitle track"), (subtitled, "no de subtitle track")):
        refused = await client.post(
            "/api/jobs", json=_job(key, withSubtitles=True, subtitleLang="de")
        )
        field, message = _refused_field(refused)
        assert field == "subtitleLang"
        assert track in message
        assert "ASR_MODEL" in message  # the setting an operator would change
        assert "subtitlesKey" in message  # what the user can do instead
        assert "/" not in message  # no server path (the model's folder)
        assert str(data_dir) not in refused.text
    assert _nothing_queued(db_url)


async def test_subtitles_from_speech_a_track_or_a_sidecar_are_accepted(
    client: httpx.AsyncClient, sources: dict[str, Path], tmp_path: Path
) -> None:
    plain = await _key(client, sources["plain"])
    subtitled = await _key(client, sources["subtitled"])
    srt = tmp_path / "talk.srt"
    srt.write_text(SUBTITLES)
    sidecar = await _key(client, srt)
    for more in (
        {"withSubtitles": True},  # auto: from speech, in the model's language
        {"withSubtitles": True, "subtitleLang": "auto"},
        {"withSubtitles": True, "subtitleLang": "en"},
        {"withSubtitles": True, "subtitleLang": "en-GB"},
        {"withSubtitles": True, "subtitleLang": "de", "subtitlesKey": sidecar},
    ):
        accepted = await client.post("/api/jobs", json=_job(plain, **more))
        assert accepted.status_code == 202, (more, accepted.text)
    english = await client.post(
        "/api/jobs", json=_job(subtitled, withSubtitles=True, subtitleLang="en")
    )
    assert english.status_code == 202, english.text


async def test_a_batch_of_an_upload_refuses_a_language_the_model_cannot_hear(
    client: httpx.AsyncClient, sources: dict[str, Path], db_url: str
) -> None:
    key = await _key(client, sources["plain"])
    clips = [{"start": "00:00:01", "end": "00:00:03"}, {"start": "00:00:05", "end": "00:00:07"}]
    refused = await client.post(
        "/api/jobs/batch",
        json={
            "sourceType": "upload",
            "uploadKey": key,
            "clips": clips,
            "withSubtitles": True,
            "subtitleLang": "de",
        },
    )
    field, message = _refused_field(refused)
    assert field == "subtitleLang"
    assert "ASR_MODEL" in message
    assert _nothing_queued(db_url)


# Never fetched: the API checks the URL's host (an allowlisted literal address), not its media.
_URL_SOURCE = {"sourceType": "youtube", "youtubeUrl": "http://127.0.0.1:9/talk.mp4"}


async def test_a_url_source_refuses_subtitles_in_a_language_the_model_cannot_hear(
    make_client: ApiFactory, db_url: str
) -> None:
    """A URL's media is not known before the worker fetches it, and carries no text track in
    practice: its subtitles come from speech, so the language is checked at the door."""
    client = await make_client(enable_ytdlp=True, allowlist_hosts="127.0.0.1")
    span = {"start": "00:00:02", "end": "00:00:06"}
    german = {"withSubtitles": True, "subtitleLang": "de"}
    refused = await client.post("/api/jobs", json={**_URL_SOURCE, **span, **german})
    field, message = _refused_field(refused)
    assert field == "subtitleLang"
    assert "ASR_MODEL" in message
    assert "/" not in message
    batch = await client.post("/api/jobs/batch", json={**_URL_SOURCE, "clips": [span], **german})
    assert _refused_field(batch)[0] == "subtitleLang"
    assert _nothing_queued(db_url)
    english = {"withSubtitles": True, "subtitleLang": "en"}
    accepted = await client.post("/api/jobs", json={**_URL_SOURCE, **span, **english})
    assert accepted.status_code == 202, accepted.text


async def test_a_truncated_upload_is_refused_and_named_as_such(
    client: httpx.AsyncClient, sources: dict[str, Path], data_dir: Path
) -> None:
    refused = await _upload(client, sources["truncated"])
    field, message = _refused_field(refused)
    assert field == "file"
    assert "truncated" in message
    assert "10.0 s" in message  # what its header promised
    assert str(data_dir) not in refused.text
    assert "Errno" not in refused.text
    assert [path.parent.name for path in (data_dir / "sources").glob("*/source")] == [
        SAMPLE_UPLOAD_KEY.removeprefix("up_")  # the fixture's own upload: nothing else is kept
    ]


async def test_a_corrupt_upload_is_refused_and_named_as_such(
    client: httpx.AsyncClient, sources: dict[str, Path], tmp_path: Path
) -> None:
    # Its headers intact, its media data zeroed: it opens, but no frame decodes.
    data = bytearray(sources["plain"].read_bytes())
    media = data.index(b"mdat") + 4
    data[media : media + 60_000] = bytes(60_000)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    field, message = _refused_field(await _upload(client, corrupt))
    assert field == "file"
    assert "corrupt" in message


async def test_a_job_of_an_upload_from_before_is_checked_on_the_worker(
    make_client: ApiFactory, db_url: str, sources: dict[str, Path]
) -> None:
    """An upload stored before uploads recorded their media has nothing to check against: the
    job is accepted, as it was then (the worker refuses it without retries: test_clips.py)."""
    client = await make_client()
    key = await _key(client, sources["plain"])
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE uploads SET media = NULL WHERE key = %s", (key,))
    accepted = await client.post("/api/jobs", json=_job(key, "00:00:02", "00:00:12"))
    assert accepted.status_code == 202, accepted.text
