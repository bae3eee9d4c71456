"""Every text field of a request is bounded and matched whole, in ASCII: over-long, newline-
suffixed or non-ASCII-digit values are a 422 naming the field. X-Request-Id is taken only when
it is wholly sane."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from clipper.api import schemas
from clipper.api.schemas import JobCreate
from tests.api.conftest import SAMPLE_UPLOAD_KEY, clip

YOUTUBE = {"sourceType": "youtube", "uploadKey": None}
LONG_URL = "https://videos.example/" + "a" * 2040  # within HttpUrl's own 2083, over 2048


def _request_models() -> list[type[BaseModel]]:
    """The models requests are read into: the ones refusing unknown fields."""
    return [
        model
        for model in vars(schemas).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.model_config.get("extra") == "forbid"
    ]


def test_every_text_field_of_every_request_model_has_a_length_limit() -> None:
    """Future fields and models too: a text field without maxLength fails here."""
    assert JobCreate in _request_models()
    for model in _request_models():
        schema = model.model_json_schema()
        for definition in [schema, *schema.get("$defs", {}).values()]:
            for name, field in definition.get("properties", {}).items():
                for form in field.get("anyOf", [field]):
                    if form.get("type") == "string" and not {"enum", "const"} & form.keys():
                        assert "maxLength" in form, f"{model.__name__}.{name} has no limit"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"uploadKey": "up_" + "a" * 300}, "uploadKey"),
        ({**YOUTUBE, "youtubeUrl": LONG_URL}, "youtubeUrl"),
        ({"start": "00:00:01" + "0" * 100}, "start"),
        ({"end": "00:00:35" + "0" * 100}, "end"),
        ({"withSubtitles": True, "subtitleLang": "en" + "-abcdefgh" * 8}, "subtitleLang"),
        ({"withSubtitles": True, "subtitlesKey": "up_" + "a" * 300}, "subtitlesKey"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_an_over_long_field_is_a_422_naming_it(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/jobs", json=clip(**overrides))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(field)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"uploadKey": SAMPLE_UPLOAD_KEY + "\n"}, "uploadKey"),
        ({"start": "00:00:05\n"}, "start"),
        ({"end": "00:00:35\n"}, "end"),
        ({"start": "\u0660\u0660:\u0660\u0660:\u0660\u0665"}, "start"),  # Arabic-Indic digits
        ({"end": "00:00:\uff13\uff15"}, "end"),  # fullwidth digits
        ({"withSubtitles": True, "subtitleLang": "en\n"}, "subtitleLang"),
        ({"withSubtitles": True, "subtitleLang": "en-\u0661\u0662"}, "subtitleLang"),
    ],
    ids=repr,
)
async def test_a_trailing_newline_or_a_non_ascii_digit_is_a_422_naming_the_field(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/jobs", json=clip(**overrides))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


async def test_the_limits_leave_real_values_alone(client: httpx.AsyncClient) -> None:
    body = clip(start="00:00:05.250", end="00:00:35", withSubtitles=True, subtitleLang="pt-BR")
    assert (await client.post("/api/jobs", json=body)).status_code == 202


@pytest.mark.parametrize("offered", ["req-1\n", "req-1\r\n", "req-\u0661", "x" * 129])
async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient, offered: str) -> None:
    response = await client.get("/healthz", headers={b"X-Request-Id": offered.encode()})
    assert response.headers["x-request-id"] != offered
    assert len(response.headers["x-request-id"]) == 32  # a fresh one


async def test_a_sane_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "req-1.a:b_c"})
    assert response.headers["x-request-id"] == "req-1.a:b_c"
