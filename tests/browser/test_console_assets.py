"""The console's files as the API serves them (no browser needed): content types, the
Content-Security-Policy, no file outside the folder, every module the page names present,
and GET /api/console/config."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from clipper.api import create_app
from clipper.api.routes.console import ASSETS
from clipper.settings import Settings


@pytest.fixture
async def client(db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, enable_api_keys=True, max_input_mb=42
    )
    app = create_app(settings, db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as made:
            yield made


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        ("/console/", "text/html"),
        ("/console/main.js", "text/javascript"),
        ("/console/console.css", "text/css"),
        ("/console/icon.svg", "image/svg+xml"),
    ],
)
async def test_each_file_has_its_type_and_a_strict_policy_without_a_key(
    client: httpx.AsyncClient, path: str, kind: str
) -> None:
    answer = await client.get(path)  # keys are on: the page itself needs none
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(kind)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy  # no 'unsafe-inline', no other origin
    assert "unsafe" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/console/..%2Fapp.py", "/console/%2E%2E%2Froutes%2Fconsole.py", "/console/nope.js"]
)
async def test_nothing_outside_the_folder_is_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


def test_the_page_has_no_inline_script_or_style_and_names_only_present_modules() -> None:
    html = (ASSETS / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html
    assert "<style" not in html
    assert "http://" not in html  # nothing from another origin
    assert "https://" not in html.replace('placeholder="https://…"', "")
    for module in ASSETS.glob("*.js"):
        for imported in re.findall(r'from "\./([\w-]+\.js)"', module.read_text()):
            assert (ASSETS / imported).is_file(), (module.name, imported)
        assert ".innerHTML" not in module.read_text(), module.name


async def test_the_config_says_what_the_page_adapts_to(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/console/config")
    assert answer.status_code == 200
    assert answer.json() == {
        "urlSources": False,
        "maxUploadMb": 42,
        "clipMaxDurationSec": 120,
        "apiKeys": True,
    }
