"""`cut` through the API and a real worker: exact (the default) starts on the frame on screen at
the start, fast on the keyframe before it, and the job says where its clip actually starts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.domain.clips import ClipRequest, CutMode
from clipper.domain.jobs import SourceType
from tests.api.conftest import SAMPLE_UPLOAD_KEY, ApiFactory
from tests.api.test_clips import _upload, _wait_finished
from tests.media_files import frame_numbers, make_numbered_video

# The fingerprint of an upload clip from 1 s to 2 s, as it was before requests had a `cut`.
_EXACT_BEFORE_CUT = "e260e8bca39823e2453d0bfd642315a04cdaf2b5f5b75995e31c8e1d35ea00c8"


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25 fps, keyframes every 2 s, each frame showing its number."""
    return make_numbered_video(tmp_path_factory.mktemp("cut_mode") / "numbered.mp4", seconds=10)


def _body(upload_key: str, start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {"sourceType": "upload", "uploadKey": upload_key, "start": start, "end": end, **fields}


@pytest.mark.parametrize(
    ("fields", "cut", "actual_start", "first"),
    [
        ({}, "exact", "00:00:01.240", 31),  # frame 31 is on screen from 1.240 s to 1.280 s
        ({"cut": "fast"}, "fast", "00:00:00.000", 0),  # the keyframe before 1.250 s
    ],
)
@pytest.mark.usefixtures("worker")
async def test_the_job_cuts_as_asked_and_says_where_its_clip_starts(
    make_client: ApiFactory,
    numbered: Path,
    tmp_path: Path,
    fields: dict[str, str],
    cut: str,
    actual_start: str,
    first: int,
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, numbered)).json()["uploadKey"]
    created = await client.post("/api/jobs", json=_body(key, "00:00:01.250", "00:00:03", **fields))
    assert created.status_code == 202, created.text
    job = await _wait_finished(client, created.json()["id"])
    assert (job["status"], job["cut"], job["actualStart"]) == ("done", cut, actual_start)
    links = (await client.get(f"/api/jobs/{job['id']}/result")).json()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((await client.get(httpx.URL(links["video"]["url"]))).content)
    assert frame_numbers(clip) == list(range(first, 75))  # the end (frame 75) is exclusive


@pytest.mark.usefixtures("worker")
async def test_a_fast_cut_between_keyframes_starts_on_the_keyframe_before(
    make_client: ApiFactory, numbered: Path, tmp_path: Path
) -> None:
    client: httpx.AsyncClient = await make_client()
    key = (await _upload(client, numbered)).json()["uploadKey"]
    created = await client.post(
        "/api/jobs", json=_body(key, "00:00:05.300", "00:00:07", cut="fast")
    )
    job = await _wait_finished(client, created.json()["id"])
    assert (job["status"], job["actualStart"]) == ("done", "00:00:04.000")
    events = (await client.get(f"/api/jobs/{job['id']}/events")).json()
    assert "encode" not in {e["payload"].get("stage") for e in events}  # stream copy only
    links = (await client.get(f"/api/jobs/{job['id']}/result")).json()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((await client.get(httpx.URL(links["video"]["url"]))).content)
    assert frame_numbers(clip) == list(range(100, 175))


async def test_cut_is_checked_and_shared_by_batches(
    client: httpx.AsyncClient,
) -> None:
    upload = SAMPLE_UPLOAD_KEY
    wrong = await client.post("/api/jobs", json=_body(upload, "00:00:01", "00:00:02", cut="slow"))
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"][0]["field"] == "cut"
    burned = _body(upload, "00:00:01", "00:00:02", cut="fast")
    burned |= {"withSubtitles": True, "burnSubtitles": True}
    refused = await client.post("/api/jobs", json=burned)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "burnSubtitles"

    batch = {
        "sourceType": "upload",
        "uploadKey": upload,
        "cut": "fast",
        "clips": [
            {"start": "00:00:01", "end": "00:00:02"},
            {"start": "00:00:03", "end": "00:00:04"},
        ],
    }
    accepted = await client.post("/api/jobs/batch", json=batch)
    assert accepted.status_code == 202, accepted.text
    for job in accepted.json()["jobs"]:
        read = (await client.get(f"/api/jobs/{job['id']}")).json()
        assert (read["cut"], read["actualStart"]) == ("fast", None)  # not done yet


def test_the_cut_is_part_of_the_request_an_idempotency_key_stands_for() -> None:
    exact = ClipRequest(SourceType.UPLOAD, 1_000, 2_000, upload_key=SAMPLE_UPLOAD_KEY)
    assert exact.fingerprint() != replace(exact, cut=CutMode.FAST).fingerprint()
    # Left out when exact (the default), so keys used before `cut` existed still match.
    assert exact.fingerprint() == _EXACT_BEFORE_CUT
