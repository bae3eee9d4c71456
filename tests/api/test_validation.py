"""Every rule of a clip request answers 422 naming its field, in the error envelope; bad and
oversized bodies are refused cleanly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import clip

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("source type missing", clip(sourceType=None), "sourceType", "VALIDATION_FAILED"),
    ("unknown source type", clip(sourceType="ftp"), "sourceType", "VALIDATION_FAILED"),
    ("upload without key", clip(uploadKey=None), "uploadKey", "VALIDATION_FAILED"),
    (
        "upload with a url too",
        clip(youtubeUrl="https://v.example/w"),
        "youtubeUrl",
        "VALIDATION_FAILED",
    ),
    (
        "youtube without url",
        clip(sourceType="youtube", uploadKey=None),
        "youtubeUrl",
        "VALIDATION_FAILED",
    ),
    (
        "youtube with an upload key",
        clip(sourceType="youtube", youtubeUrl="https://v.example/w"),
        "uploadKey",
        "VALIDATION_FAILED",
    ),
    (
        "url not http(s)",
        clip(sourceType="youtube", uploadKey=None, youtubeUrl="ftp://x/y"),
        "youtubeUrl",
        "VALIDATION_FAILED",
    ),
    ("start not a timecode", clip(start="1:00"), "start", "VALIDATION_FAILED"),
    ("minutes of 60", clip(start="00:60:00"), "start", "VALIDATION_FAILED"),
    ("seconds of 99", clip(end="00:00:99"), "end", "VALIDATION_FAILED"),
    ("end before start", clip(start="00:00:35", end="00:00:05"), "end", "VALIDATION_FAILED"),
    ("end equal to start", clip(start="00:00:05", end="00:00:05"), "end", "VALIDATION_FAILED"),
    ("burn without subtitles", clip(burnSubtitles=True), "burnSubtitles", "VALIDATION_FAILED"),
    (
        "bad subtitle language",
        clip(withSubtitles=True, subtitleLang="English!"),
        "subtitleLang",
        "VALIDATION_FAILED",
    ),
    ("unknown priority", clip(priority="urgent"), "priority", "VALIDATION_FAILED"),
    (
        "subtitles flag not a boolean",
        clip(withSubtitles="maybe"),
        "withSubtitles",
        "VALIDATION_FAILED",
    ),
    ("unknown field", clip(colour="red"), "colour", "VALIDATION_FAILED"),
    (
        "longer than CLIP_MAX_DURATION_SEC",
        clip(start="00:00:00", end="00:02:00.001"),
        "end",
        "CLIP_TOO_LONG",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_each_rule_names_its_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, code: str
) -> None:
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(field)
    assert error["correlationId"]


async def test_the_longest_allowed_clip_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs", json=clip(start="00:00:00", end="00:02:00"))
    assert response.status_code == 202, response.text


async def test_milliseconds_are_kept(client: httpx.AsyncClient) -> None:
    job_id = await client.post("/api/jobs", json=clip(start="00:00:01.5", end="00:00:02.25"))
    job = (await client.get(f"/api/jobs/{job_id.json()['id']}")).json()
    assert (job["start"], job["end"]) == ("00:00:01.500", "00:00:02.250")


async def test_malformed_json_is_a_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/jobs",
        content=b'{"sourceType": "upload",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "body"


async def test_oversized_bodies_are_refused_by_header_and_while_streaming(
    client: httpx.AsyncClient,
) -> None:
    big = b'{"uploadKey": "' + b"x" * 70_000 + b'"}'
    declared = await client.post(
        "/api/jobs", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # It says what the limit is, and which setting sets it.
    assert "65536 bytes (MAX_REQUEST_BYTES)" in declared.json()["error"]["message"]

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await client.post(
        "/api/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "MAX_REQUEST_BYTES" in streamed.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/jobs", "/api/jobs/batch"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_a_body_that_is_not_json_is_a_415_saying_what_to_send(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.post(
        path, content=b'{"sourceType": "upload"}', headers={"content-type": content_type}
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in error["message"]


async def test_json_with_parameters_or_a_json_suffix_is_json(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/api/jobs", content=b"{}", headers={"content-type": content_type}
        )
        assert response.status_code == 422, content_type  # read, and found incomplete
