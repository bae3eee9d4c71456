"""A job's `output` through the API and a real worker: the container, codecs and size it asks
come out, with a thumbnail and a preview when asked, each served with its own content type;
choices that cannot work are 422s naming the choice (at once, or from an upload's probed
facts), and on the worker, for a source it alone knows, OUTPUT_UNSUPPORTED without retries."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from clipper.api.schemas import ClipOutput
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import SourceType
from clipper.domain.outputs import Container, OutputOptions
from clipper.media.outputs import written_container
from clipper.media.probe import probe
from tests.api.conftest import SAMPLE_UPLOAD_KEY, ApiFactory
from tests.api.test_clips import _wait_finished
from tests.media_files import frame_numbers, make_hdr_video, make_numbered_video, make_video

# The fingerprint of an upload clip from 1 s to 2 s before requests had a `cut` or an
# `output` (test_cut_mode.py): a default output leaves it as it was.
_BEFORE_OUTPUTS = "e260e8bca39823e2453d0bfd642315a04cdaf2b5f5b75995e31c8e1d35ea00c8"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("output_options")
    return {
        "numbered": make_numbered_video(folder / "numbered.mp4", seconds=6),
        "plain": make_video(folder / "plain.mp4", 6),
        "tone": make_video(folder / "tone.m4a", 4, video=False),
        "hdr": make_hdr_video(folder / "hdr.mp4", 3),
    }


async def _key(client: httpx.AsyncClient, path: Path) -> str:
    data = await asyncio.to_thread(path.read_bytes)
    uploaded = await client.post("/api/uploads", files={"file": (path.name, data, "video/mp4")})
    assert uploaded.status_code == 201, uploaded.text
    key: str = uploaded.json()["uploadKey"]
    return key


def _job(key: str, start: str = "00:00:01", end: str = "00:00:03", **more: Any) -> dict[str, Any]:
    return {"sourceType": "upload", "uploadKey": key, "start": start, "end": end, **more}


def _refused_field(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    return detail["field"], detail["message"]


async def _download(client: httpx.AsyncClient, link: dict[str, str], to: Path) -> str:
    """Fetch a result link into `to`; its Content-Type."""
    response = await client.get(httpx.URL(link["url"]))
    assert response.status_code == 200
    await asyncio.to_thread(to.write_bytes, response.content)
    return response.headers["content-type"]


@pytest.mark.usefixtures("worker")
async def test_a_job_makes_the_output_and_images_it_asks_for(
    make_client: ApiFactory, sources: dict[str, Path], tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _key(client, sources["numbered"])
    output = {"container": "webm", "maxHeight": 8, "thumbnail": True, "preview": "gif"}
    refused = await client.post("/api/jobs", json=_job(key, output=output))
    assert _refused_field(refused)[0] == "output.maxHeight"  # below 64
    output["maxHeight"] = 480  # above the source's 16 px: nothing to scale
    created = await client.post(
        "/api/jobs", json=_job(key, "00:00:01.250", "00:00:03", output=output)
    )
    assert created.status_code == 202, created.text
    job = await _wait_finished(client, created.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["output"] == {
        "container": "webm",
        "videoCodec": None,  # chosen by the source: vp9 in webm
        "audioBitrate": 128,
        "quality": "medium",
        "maxHeight": 480,
        "toneMap": False,
        "thumbnail": True,
        "preview": "gif",
    }
    links = (await client.get(f"/api/jobs/{job['id']}/result")).json()
    assert links["subtitles"] is None
    names = {
        kind: httpx.URL(links[kind]["url"]).path.rsplit("/", 1)[1]
        for kind in ("video", "thumbnail", "preview")
    }
    assert names == {"video": "clip.webm", "thumbnail": "poster.jpg", "preview": "preview.gif"}

    clip = tmp_path / "clip.webm"
    assert await _download(client, links["video"], clip) == "video/webm"
    assert written_container(clip) is Container.WEBM
    info = await probe(clip)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    assert frame_numbers(clip) == list(range(31, 75))  # still an exact cut

    poster = tmp_path / "poster.jpg"
    assert await _download(client, links["thumbnail"], poster) == "image/jpeg"
    assert frame_numbers(poster) == [31]  # the clip's first frame

    preview = tmp_path / "preview.gif"
    assert await _download(client, links["preview"], preview) == "image/gif"
    assert preview.read_bytes()[:6] == b"GIF89a"
    assert len(frame_numbers(preview)) > 1  # animated


@pytest.mark.usefixtures("worker")
async def test_an_audio_upload_makes_an_m4a_by_default_and_an_mp3_when_asked(
    make_client: ApiFactory, sources: dict[str, Path], tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _key(client, sources["tone"])
    refused = await client.post("/api/jobs", json=_job(key, output={"thumbnail": True}))
    field, message = _refused_field(refused)
    assert (field, message) == ("output.thumbnail", "needs video, and the source has none")
    made: dict[str, tuple[str, Container | None, str | None]] = {}
    for output in ({}, {"container": "mp3", "audioBitrate": 64}):
        created = await client.post("/api/jobs", json=_job(key, output=output))
        assert created.status_code == 202, created.text
        job = await _wait_finished(client, created.json()["id"])
        assert job["status"] == "done", job["error"]
        link = (await client.get(f"/api/jobs/{job['id']}/result")).json()["video"]
        name = httpx.URL(link["url"]).path.rsplit("/", 1)[1]
        target = tmp_path / name
        served = await _download(client, link, target)
        made[name] = (
            served,
            written_container(target),
            (await probe(target)).audio_codec,
        )
    assert made == {
        "clip.m4a": ("audio/mp4", Container.M4A, "aac"),
        "clip.mp3": ("audio/mpeg", Container.MP3, "mp3"),
    }


async def test_a_10_bit_hdr_upload_refuses_h264_unless_tone_mapped(
    client: httpx.AsyncClient, sources: dict[str, Path]
) -> None:
    key = await _key(client, sources["hdr"])
    h264 = {"videoCodec": "h264"}
    field, message = _refused_field(await client.post("/api/jobs", json=_job(key, output=h264)))
    assert field == "output.videoCodec"
    assert "HDR" in message
    assert "hevc" in message  # what to choose instead
    assert "output.toneMap" in message  # or how to accept 8-bit SDR
    for output in ({}, {"videoCodec": "h264", "toneMap": True}, {"container": "webm"}):
        accepted = await client.post(
            "/api/jobs", json=_job(key, "00:00:00", "00:00:02", output=output)
        )
        assert accepted.status_code == 202, (output, accepted.text)


@pytest.mark.parametrize(
    ("output", "field"),
    [
        ({"container": "webm", "videoCodec": "h264"}, "output.videoCodec"),
        ({"container": "mov", "videoCodec": "vp9"}, "output.videoCodec"),
        ({"videoCodec": "vp9"}, "output.videoCodec"),  # the default container is mp4
        ({"container": "m4a", "thumbnail": True}, "output.thumbnail"),
        ({"container": "mp3", "preview": "webp"}, "output.preview"),
        ({"container": "avi"}, "output.container"),
        ({"videoCodec": "mpeg2"}, "output.videoCodec"),
        ({"audioBitrate": 16}, "output.audioBitrate"),
        ({"audioBitrate": 500}, "output.audioBitrate"),
        ({"quality": "best"}, "output.quality"),
        ({"maxHeight": 10_000}, "output.maxHeight"),
        ({"thumbnail": "3 seconds"}, "output.thumbnail"),
        ({"thumbnail": "true"}, "output.thumbnail"),  # a string: neither true nor a timecode
        ({"thumbnail": "00:00:02"}, "output.thumbnail"),  # the clip lasts 2 s
        ({"preview": "apng"}, "output.preview"),
        ({"bitrate": 3}, "output.bitrate"),  # unknown fields are refused
    ],
)
async def test_choices_that_cannot_work_are_refused_naming_the_field(
    client: httpx.AsyncClient, output: dict[str, Any], field: str
) -> None:
    refused = await client.post("/api/jobs", json=_job(SAMPLE_UPLOAD_KEY, output=output))
    assert _refused_field(refused)[0] == field


async def test_burned_subtitles_need_a_container_with_video(client: httpx.AsyncClient) -> None:
    body = _job(SAMPLE_UPLOAD_KEY, withSubtitles=True, burnSubtitles=True)
    refused = await client.post("/api/jobs", json={**body, "output": {"container": "m4a"}})
    assert _refused_field(refused) == ("burnSubtitles", "needs video, and m4a has none")
    accepted = await client.post("/api/jobs", json={**body, "output": {"container": "mkv"}})
    assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize(
    ("output", "field"),
    [
        ({"quality": "high"}, "output.quality"),  # whatever the source: a re-encode
        ({"audioBitrate": 64}, "output.audioBitrate"),
    ],
)
async def test_a_fast_cut_refuses_choices_that_re_encode(
    client: httpx.AsyncClient, output: dict[str, Any], field: str
) -> None:
    body = _job(SAMPLE_UPLOAD_KEY, cut="fast", output=output)
    field_named, message = _refused_field(await client.post("/api/jobs", json=body))
    assert field_named == field
    assert "cut fast" in message


async def test_a_fast_cut_of_an_upload_refuses_a_container_that_needs_a_re_encode(
    client: httpx.AsyncClient, sources: dict[str, Path], db_url: str
) -> None:
    key = await _key(client, sources["plain"])  # H.264 and AAC
    for output, field in (
        ({"container": "webm"}, "output.container"),
        ({"maxHeight": 120}, "output.maxHeight"),
        ({"videoCodec": "av1"}, "output.videoCodec"),
    ):
        body = _job(key, cut="fast", output=output)
        assert _refused_field(await client.post("/api/jobs", json=body))[0] == field
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    # Copy can make these: the source's codecs, in containers that hold them.
    copyable: list[dict[str, Any]] = [
        {"container": "mkv"},
        {"container": "mov", "thumbnail": True},
        {"maxHeight": 240},
    ]
    for fine in copyable:
        accepted = await client.post("/api/jobs", json=_job(key, cut="fast", output=fine))
        assert accepted.status_code == 202, (fine, accepted.text)


async def test_a_batch_shares_its_output_and_names_the_clip_a_thumbnail_misses(
    client: httpx.AsyncClient,
) -> None:
    clips = [{"start": "00:00:01", "end": "00:00:05"}, {"start": "00:00:06", "end": "00:00:08"}]
    batch = {
        "sourceType": "upload",
        "uploadKey": SAMPLE_UPLOAD_KEY,
        "clips": clips,
        "output": {"container": "mkv", "thumbnail": "00:00:03"},
    }
    field, message = _refused_field(await client.post("/api/jobs/batch", json=batch))
    assert field == "output.thumbnail"
    assert "clips[1]" in message
    clips[1]["end"] = "00:00:10"
    accepted = await client.post("/api/jobs/batch", json=batch)
    assert accepted.status_code == 202, accepted.text
    for job in accepted.json()["jobs"]:
        read = (await client.get(f"/api/jobs/{job['id']}")).json()
        assert (read["output"]["container"], read["output"]["thumbnail"]) == (
            "mkv",
            "00:00:03.000",
        )


async def test_a_job_without_output_reads_back_the_defaults(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/jobs", json=_job(SAMPLE_UPLOAD_KEY))
    read = (await client.get(f"/api/jobs/{created.json()['id']}")).json()
    assert read["output"] == ClipOutput().model_dump(by_alias=True, mode="json")
    assert read["output"]["container"] is None


async def test_the_output_is_part_of_the_request_an_idempotency_key_stands_for(
    client: httpx.AsyncClient,
) -> None:
    plain = ClipRequest(SourceType.UPLOAD, 1_000, 2_000, upload_key=SAMPLE_UPLOAD_KEY)
    assert plain.fingerprint() == _BEFORE_OUTPUTS  # a default output: the old hash
    webm = replace(plain, output=OutputOptions(container=Container.WEBM))
    assert webm.fingerprint() != plain.fingerprint()
    headers = {"Idempotency-Key": "output-1"}
    first = await client.post("/api/jobs", json=_job(SAMPLE_UPLOAD_KEY), headers=headers)
    assert first.status_code == 202
    again = await client.post("/api/jobs", json=_job(SAMPLE_UPLOAD_KEY, output={}), headers=headers)
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])  # the same
    other = await client.post(
        "/api/jobs", json=_job(SAMPLE_UPLOAD_KEY, output={"container": "mkv"}), headers=headers
    )
    assert other.status_code == 409


@pytest.mark.usefixtures("worker")
async def test_an_upload_without_probed_facts_is_refused_on_the_worker_without_retries(
    make_client: ApiFactory, sources: dict[str, Path], db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = await _key(client, sources["hdr"])
    with psycopg.connect(db_url) as conn:  # as an upload stored before 0011 is
        conn.execute("UPDATE uploads SET media = NULL WHERE key = %s", (key,))
    body = _job(key, "00:00:00", "00:00:02", output={"videoCodec": "h264"})
    created = await client.post("/api/jobs", json=body)
    assert created.status_code == 202, created.text
    job = await _wait_finished(client, created.json()["id"])
    assert (job["status"], job["attempts"], job["error"]["code"]) == (
        "failed",
        1,
        "OUTPUT_UNSUPPORTED",
    )
    assert job["error"]["message"].startswith("output.videoCodec: the source is HDR video")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM dlq_jobs").fetchone() == (0,)


async def test_the_download_route_declares_every_result_type(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    served = document["paths"]["/files/{key}"]["get"]["responses"]["200"]["content"]
    assert {
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "video/x-matroska",
        "audio/mp4",
        "audio/mpeg",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/x-subrip",
    } <= set(served)
    for example in document["components"]["schemas"]["ClipOutput"]["examples"]:
        ClipOutput.model_validate(example)
