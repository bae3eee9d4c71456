"""/openapi.json is a document clients can trust: valid OpenAPI, the error envelope the API
really sends, every status each route answers, readable titles, examples; /docs needs no CDN.

Statuses answered anywhere in tests/api are checked against the document when the session
ends (conftest.py, observed_statuses); the last test here drives one of each kind itself."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from clipper.api.routes.direct_uploads import DirectUploadCreate
from clipper.api.schemas import BatchCreate, JobCreate
from tests.api.conftest import ApiFactory, clip, create_key
from tests.api.statuses import Observed, undeclared

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
CREATING = [
    ("post", "/api/uploads"),
    ("post", "/api/uploads/presigned"),
    ("post", "/api/jobs"),
    ("post", "/api/jobs/batch"),
]


async def document_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def envelope_errors(document: dict[str, Any], body: object) -> list[str]:
    """Why `body` is not the document's ErrorEnvelope (nothing when it is)."""
    validator = OAS31Validator({**ENVELOPE, "components": document["components"]})
    return [error.message for error in validator.iter_errors(body)]


async def test_the_document_is_valid_openapi_and_has_the_download_route(
    client: httpx.AsyncClient,
) -> None:
    document = await document_of(client)
    validate(document)  # raises with the first violation of the OpenAPI 3.1 schema
    files = document["paths"]["/files/{key}"]["get"]
    assert {"200", "206", "401", "404", "410", "416"} <= set(files["responses"])
    assert "video/mp4" in files["responses"]["206"]["content"]
    assert {"key", "expires", "signature", "Range"} <= {p["name"] for p in files["parameters"]}


async def test_every_error_answer_is_the_envelope(client: httpx.AsyncClient) -> None:
    document = await document_of(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    # Answered by other code than the envelope's: Range refusals (plain text, by Starlette's
    # FileResponse) and /readyz's report of its checks.
    own_shapes = {("get", "/files/{key}", "400"), ("get", "/files/{key}", "416")}
    own_shapes.add(("get", "/readyz", "503"))
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path, status) in own_shapes:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == ENVELOPE, (method, path, status)
            for name, example in response["content"]["application/json"]["examples"].items():
                assert not envelope_errors(document, example["value"]), (path, status, name)


async def test_each_route_declares_the_statuses_of_its_kind(client: httpx.AsyncClient) -> None:
    document = await document_of(client)
    declared = {(method, path): set(op["responses"]) for method, path, op in operations(document)}
    open_routes = {("get", "/healthz"), ("get", "/readyz"), ("get", "/files/{key}")}
    for route, statuses in declared.items():
        if route not in open_routes:  # keyed, and the key is checked in the database
            assert {"401", "503"} <= statuses, route
    for route in CREATING:
        assert {"413", "422", "429"} <= declared[route], route
        retry_after = document["paths"][route[1]][route[0]]["responses"]["429"]["headers"]
        assert retry_after["Retry-After"]["schema"]["type"] == "integer"
    assert "507" in declared[("post", "/api/uploads")]
    assert {"201", "409", "415"} <= declared[("post", "/api/uploads/presigned")]
    complete = ("post", "/api/uploads/{upload_key}/complete")
    assert {"200", "201", "404", "409", "422"} <= declared[complete]
    assert {"404", "409", "410"} <= declared[("get", "/api/jobs/{job_id}/result")]
    assert {"404", "409"} <= declared[("post", "/api/jobs/{job_id}/cancel")]
    assert {"404", "410"} <= declared[("get", "/api/jobs/{job_id}")]
    assert {"403", "404", "409"} <= declared[("post", "/api/dlq/{job_id}/requeue")]
    assert {"200", "503"} <= declared[("get", "/readyz")]
    # The console's admin routes and the live streams.
    for route in [
        ("get", "/api/admin/overview"),
        ("get", "/api/admin/overview/stream"),
        ("get", "/api/admin/workers"),
        ("get", "/api/dlq/groups"),
    ]:
        assert {"200", "401", "403", "503"} <= declared[route], route
    for action in ("pause", "resume"):
        assert {"200", "403", "404"} <= declared[("post", f"/api/admin/queues/{{queue}}/{action}")]
    for route in [("post", "/api/dlq/requeue"), ("post", "/api/dlq/discard")]:
        assert {"200", "403", "415", "422"} <= declared[route], route
    assert {"200", "403", "404"} <= declared[("post", "/api/dlq/{job_id}/discard")]
    assert {"200", "404", "410"} <= declared[("get", "/api/jobs/{job_id}/stream")]
    for path in ("/api/jobs/{job_id}/stream", "/api/admin/overview/stream"):
        assert "text/event-stream" in document["paths"][path]["get"]["responses"]["200"]["content"]


def _squashed(name: str, title: str) -> bool:
    """`Sourcetype` for `sourceType`: a camelCase name made one word."""
    return bool(re.search(r"[a-z][A-Z]", name)) and title == name.capitalize()


def _titles(node: object) -> Iterator[tuple[str, str]]:
    """(property or parameter name, its title) anywhere in the document."""
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            if isinstance(schema, dict) and "title" in schema:
                yield name, schema["title"]
        if "in" in node and isinstance(node.get("schema"), dict):
            yield node["name"], node["schema"].get("title", "")
        for value in node.values():
            yield from _titles(value)
    elif isinstance(node, list):
        for value in node:
            yield from _titles(value)


async def test_no_title_squashes_a_camel_case_name(client: httpx.AsyncClient) -> None:
    titles = list(_titles(await document_of(client)))
    assert ("sourceType", "Source type") in titles
    assert [pair for pair in titles if _squashed(*pair)] == []


@pytest.mark.parametrize("model", [JobCreate, BatchCreate, DirectUploadCreate])
async def test_request_bodies_have_examples_that_are_valid(
    client: httpx.AsyncClient, model: type[JobCreate | BatchCreate | DirectUploadCreate]
) -> None:
    examples = (await document_of(client))["components"]["schemas"][model.__name__]["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)


class Assets(HTMLParser):
    """The URLs of a page's scripts and style sheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_this_server(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in response.text  # laid out for a phone's width
    assets = Assets()
    assets.feed(response.text)
    assert any(url.endswith(".js") for url in assets.urls)
    for url in assets.urls:
        # Same origin: a path on this server, never another host (`//cdn…`, `https://…`).
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        served = await client.get(url)
        assert served.status_code == 200, url
        assert served.content, url
    assert "fonts.googleapis" not in response.text


async def test_the_statuses_routes_answer_are_declared_and_errors_are_the_envelope(
    make_client: ApiFactory, db_url: str, observed_statuses: set[Observed]
) -> None:
    """One request of each kind of answer, whatever else ran (the session-end check covers
    the rest): each status it gets must be declared for its route."""
    api: httpx.AsyncClient = await make_client(enable_api_keys=True, key_rate_per_minute=1)
    token = await create_key(db_url)
    keyed = {"Authorization": f"Bearer {token}"}
    unknown = f"/api/jobs/{uuid.uuid4()}"
    errors = [
        await api.get("/api/jobs"),  # 401: no key
        await api.get(unknown, headers=keyed),  # 404
        await api.get("/api/jobs/not-an-id", headers=keyed),  # 422
        # 422 (end before start), after taking the key's one request of the minute...
        await api.post("/api/jobs", json=clip(end="00:00:01"), headers=keyed),
        await api.post("/api/jobs", json=clip(), headers=keyed),  # ...so 429
        await api.get("/api/dlq", headers=keyed),  # 403: not an admin key
        await api.get("/files/results/x/clip.mp4?expires=1&signature=x"),  # 401
        await api.get("/files/not-a-result"),  # 404
    ]
    assert [e.status_code for e in errors] == [401, 404, 422, 422, 429, 403, 401, 404]
    assert errors[4].headers["Retry-After"].isdigit()
    document = await document_of(api)
    for error in errors:
        assert not envelope_errors(document, error.json()), error.json()
    assert undeclared(observed_statuses, document) == []
