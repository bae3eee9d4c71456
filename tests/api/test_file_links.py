"""/files/…: only a well-formed result key with a valid signature is served. Every other key
is a 404 even when correctly signed, and a malformed signature or expiry is a 401, never a
500 or a validation error."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from clipper.api import create_app
from clipper.signing import Signer
from clipper.storage import is_result_key, result_key, source_key
from tests.api.conftest import SAMPLE_UPLOAD_KEY, settings_for

RESULT = result_key(uuid.UUID(int=7), 1)
SOURCE = source_key(SAMPLE_UPLOAD_KEY)  # stored by the data_dir fixture: must never be served
NOT_ASCII = RESULT.replace("clip", "clïp")


class Files:
    def __init__(self, client: httpx.AsyncClient, signer: Signer) -> None:
        self.client = client
        self.signer = signer

    async def get(self, raw_path: str, key: str | None = None) -> httpx.Response:
        """GET `raw_path` (percent-encoded as sent) with a valid signature for `key`, the key
        the server decodes it to."""
        query, _ = self.signer.sign(f"/files/{key if key is not None else raw_path}", 60)
        return await self.client.get(f"/files/{raw_path}?{query}")


@pytest.fixture
async def files(db_url: str, data_dir: Path) -> AsyncIterator[Files]:
    (data_dir / RESULT).parent.mkdir(parents=True)
    (data_dir / RESULT).write_bytes(b"a clip")
    app = create_app(settings_for(data_dir=data_dir, signing_key="k" * 32), db_url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://api",
        ) as client,
    ):
        yield Files(client, app.state.resources.signer)


async def test_a_signed_result_is_served(files: Files) -> None:
    response = await files.get(RESULT)
    assert (response.status_code, response.content) == (200, b"a clip")


@pytest.mark.parametrize(
    ("raw_path", "key"),
    [
        (f"results/%2e%2e/{SOURCE}", f"results/../{SOURCE}"),  # an upload's source
        (f"results/{uuid.UUID(int=7)}/%2e%2e/%2e%2e/{SOURCE}", None),
        (f"results/%2e/{RESULT.removeprefix('results/')}", None),  # a `.` segment
        (f"results/%252e%252e/{SOURCE}", f"results/%2e%2e/{SOURCE}"),  # encoded twice
        (f"results/..%5c{SOURCE}", f"results/..\\{SOURCE}"),
        ("results/%00", "results/\x00"),
        ("results//etc/passwd", None),
        ("/etc/passwd", None),
        (f"%2F{RESULT}", f"/{RESULT}"),
        ("results", None),
        ("results/", None),
        (quote(NOT_ASCII), NOT_ASCII),
        (SOURCE, None),
    ],
)
async def test_a_key_that_is_not_plainly_a_result_is_404_even_when_signed(
    files: Files, raw_path: str, key: str | None
) -> None:
    response = await files.get(raw_path, key)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "key",
    [
        "results/../sources/x/source",
        "results/./a",
        "results/a/../../b",
        "results/a\\b",
        "results\\..\\a",
        "results/a\x00",
        "results/a\n",
        "results/%2e%2e/a",
        "/results/a",
        "results//a",
        "results/a/",
        "results",
        "resultsX/a",
        "sources/a/source",
        "results/\uff41",  # a fullwidth letter
    ],
)
def test_is_result_key_refuses_every_spelling_of_traversal(key: str) -> None:
    assert not is_result_key(key)


def test_is_result_key_takes_the_keys_clipper_makes() -> None:
    assert is_result_key(result_key(uuid.uuid4(), 3))
    assert is_result_key(result_key(uuid.uuid4(), 1, "clip.srt"))


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"signature": "ü"}, id="signature not ASCII"),  # compare_digest raised
        pytest.param({"signature": "é" * 43}, id="signature of the right length, not ASCII"),
        pytest.param({"signature": "x"}, id="signature too short"),
        pytest.param({"signature": "x" * 5000}, id="signature too long"),
        pytest.param({"signature": ""}, id="signature empty"),
        pytest.param({"signature": None}, id="signature missing"),
        pytest.param({"expires": "soon"}, id="expires not a number"),
        pytest.param({"expires": "-1"}, id="expires negative"),
        pytest.param({"expires": "١٧٩٩٩٩٩٩٩٩"}, id="expires in Arabic-Indic digits"),
        pytest.param({"expires": "9" * 5000}, id="expires past int()'s digit limit"),
        pytest.param({"expires": "1"}, id="expired"),
        pytest.param({"expires": ""}, id="expires empty"),
        pytest.param({"expires": None}, id="expires missing"),
    ],
)
async def test_a_malformed_signature_or_expiry_is_401_without_a_traceback(
    files: Files, caplog: pytest.LogCaptureFixture, query: dict[str, str | None]
) -> None:
    good, _ = files.signer.sign(f"/files/{RESULT}", 60)
    params = {**dict(pair.split("=") for pair in good.split("&")), **query}
    with caplog.at_level(logging.WARNING):
        response = await files.client.get(
            f"/files/{RESULT}", params={k: v for k, v in params.items() if v is not None}
        )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert "Traceback" not in caplog.text


def test_the_signer_takes_what_it_signed_and_nothing_else() -> None:
    signer = Signer(b"k" * 32)
    expires = int(time.time()) + 60
    signature = signer.signature("/files/a", expires)
    assert signer.valid("/files/a", str(expires), signature)
    assert not signer.valid("/files/b", str(expires), signature)
    assert not signer.valid("/files/a", str(expires + 1), signature)
    assert not signer.valid("/files/a", str(expires), signature[:-1])
    assert not signer.valid("/files/a", str(expires), signature + "\n")
    assert not signer.valid("/files/a", str(expires), signature[:-1] + "ü")
