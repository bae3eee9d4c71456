"""Run the queue from the browser, with API keys on: the key prompt (and a rejected key),
a running job seen in the overview, a queue paused and resumed, a dead letter's page with
its error and trace, jobs found by key, and dead letters requeued and discarded."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By

from tests.api.conftest import create_key, key_id
from tests.browser.conftest import MakeConsole, StartServer
from tests.browser.harness import Console, Server
from tests.helpers import wait_until
from tests.media_files import make_video

# The first call of each view answers 401 until a key is given: the browser logs it.
UNAUTHORIZED = r"Failed to load resource: .* 401"
SRT = "1\n00:00:00,500 --> 00:00:03,000\nHello from the subtitles\n\n"


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("admin") / "long.mp4", seconds=90, size="960x540")


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("admin") / "subs.mp4", seconds=6, subtitles=SRT)


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": token}, timeout=30)


def submit(client: httpx.Client, video: Path, **job: Any) -> str:
    with video.open("rb") as file:
        uploaded = client.post("/api/uploads", files={"file": (video.name, file, "video/mp4")})
    assert uploaded.status_code == 201, uploaded.text
    body = {"sourceType": "upload", "uploadKey": uploaded.json()["uploadKey"], **job}
    accepted = client.post("/api/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


def status_of(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/api/jobs/{job_id}").json()["status"])


def sign_in(console: Console, token: str) -> None:
    """Answer the key prompt the first 401 opens: a wrong key first (rejected), then `token`."""
    console.visible("key-dialog")
    console.shoot("key-prompt")
    console.driver.find_element(By.ID, "key-input").send_keys("ck_wrong_key")
    console.driver.find_element(By.ID, "key-save").click()
    console.visible("key-rejected")
    assert console.driver.find_element(By.ID, "key-button").text == "Key rejected"
    console.shoot("key-rejected")
    field = console.driver.find_element(By.ID, "key-input")
    field.send_keys(token)
    console.driver.find_element(By.ID, "key-save").click()
    console.until(lambda d: not d.find_element(By.ID, "key-dialog").is_displayed())
    assert console.js("return sessionStorage.getItem('clipper.apiKey')") == token


def enter_key(console: Console, token: str) -> None:
    """Answer the key prompt with `token` at once (sign_in drives the rejected key)."""
    console.visible("key-dialog")
    console.driver.find_element(By.ID, "key-input").send_keys(token)
    console.driver.find_element(By.ID, "key-save").click()
    console.until(lambda d: not d.find_element(By.ID, "key-dialog").is_displayed())


def paused_in_api(client: httpx.Client, queue: str) -> bool:
    overview = client.get("/api/admin/overview")
    assert overview.status_code == 200, overview.text
    [found] = [q for q in overview.json()["queues"] if q["queue"] == queue]
    return bool(found["paused"])


def dead_letter_for_lack_of_fonts(client: httpx.Client, video: Path) -> str:
    """A job dead-lettered at once: no fonts to burn subtitles with (SUBTITLE_FONTS_DIR
    empty), the setup's fault, so never retried."""
    job_id = submit(
        client,
        video,
        start="00:00:00.500",
        end="00:00:02.500",
        withSubtitles=True,
        burnSubtitles=True,
    )
    wait_until(lambda: status_of(client, job_id) == "failed", message="dead-lettered")
    return job_id


def server_without_fonts(
    start_server: StartServer, db_url: str, tmp_path: Path
) -> tuple[Server, str, Path]:
    """A server with keys on whose SUBTITLE_FONTS_DIR is empty (a font copied there later is
    the fix), an admin key for it, and that folder."""
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    server = start_server(ENABLE_API_KEYS="true", SUBTITLE_FONTS_DIR=str(fonts))
    return server, asyncio.run(create_key(db_url, admin=True)), fonts


def test_a_running_job_shows_in_the_overview(
    start_server: StartServer, make_console: MakeConsole, db_url: str, long_talk: Path
) -> None:
    # A worker's row names the jobs it runs within a second of their start.
    server = start_server(ENABLE_API_KEYS="true")
    token = asyncio.run(create_key(db_url, admin=True))
    console = make_console(server)
    console.allow(UNAUTHORIZED)
    console.open("/console/#/admin")
    sign_in(console, token)
    with api(server, token) as client:
        # Between keyframes: a re-encode of most of the source, seconds of FFmpeg work.
        job_id = submit(client, long_talk, start="00:00:00.500", end="00:01:29")
        running = f'#workers a[data-job-id="{job_id}"]'
        console.until(lambda d: d.find_elements(By.CSS_SELECTOR, running), 60, "job on a worker")
        active = '[data-queue="clips"] [data-count="active"]'
        console.until(lambda d: d.find_element(By.CSS_SELECTOR, active).text == "1", 30, "active")
        assert console.driver.find_element(By.ID, "live").text == "Live."
        console.shoot("queue-overview")

        console.click(running)
        console.until(lambda d: job_id in d.find_element(By.ID, "tab-job").text)
        console.shoot("queue-job")
        console.driver.find_element(By.XPATH, "//button[text()='Cancel the job']").click()
        console.visible("confirm-dialog")
        console.driver.find_element(By.ID, "confirm-ok").click()
        console.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#tab-job [data-status="cancelled"]'),
            message="the job page shows it cancelled",
        )
        assert status_of(client, job_id) == "cancelled"

        console.driver.find_element(By.CSS_SELECTOR, '[data-tab="jobs"]').click()
        console.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'#jobs-list tr[data-job-id="{job_id}"]')
        )
        console.shoot("queue-jobs")
    console.assert_no_console_errors()


def test_a_dead_letter_is_requeued_from_the_page(
    start_server: StartServer,
    make_console: MakeConsole,
    db_url: str,
    subtitled: Path,
    tmp_path: Path,
) -> None:
    server, token, fonts = server_without_fonts(start_server, db_url, tmp_path)
    with api(server, token) as client:
        job_id = dead_letter_for_lack_of_fonts(client, subtitled)
        console = make_console(server)
        console.allow(UNAUTHORIZED)
        console.open("/console/#/admin/dlq")
        sign_in(console, token)
        letter = f'[data-code="SUBTITLE_FONTS_MISSING"] li[data-job-id="{job_id}"]'
        console.until(lambda d: d.find_elements(By.CSS_SELECTOR, letter), message="the letter")
        console.shoot("queue-dead-letters")

        font = next(Path("/usr/share/fonts").rglob("*.ttf"))  # the fix: a font where it belongs
        shutil.copy(font, fonts / font.name)
        console.driver.find_element(By.CSS_SELECTOR, f"{letter} button").click()
        console.visible("confirm-dialog")
        assert job_id in console.driver.find_element(By.ID, "confirm-text").text
        console.shoot("queue-confirm")
        console.driver.find_element(By.ID, "confirm-ok").click()
        console.until(lambda d: "Requeued job" in d.find_element(By.ID, "dlq-message").text)
        assert not console.driver.find_elements(By.CSS_SELECTOR, letter)
        assert "No dead letters" in console.driver.find_element(By.ID, "tab-dlq").text
        console.shoot("queue-dead-letters-empty")
        wait_until(lambda: status_of(client, job_id) == "done", message="done after the requeue")
    console.assert_no_console_errors()


def test_a_queue_is_paused_and_resumed_from_the_overview(
    start_server: StartServer, make_console: MakeConsole, db_url: str
) -> None:
    server = start_server(ENABLE_API_KEYS="true")
    token = asyncio.run(create_key(db_url, admin=True))
    console = make_console(server)
    console.allow(UNAUTHORIZED)
    console.open("/console/#/admin")
    enter_key(console, token)
    card = '[data-queue="clips"]'
    with api(server, token) as client:
        assert not paused_in_api(client, "clips")
        console.click(f'{card} button[aria-label="Pause the queue clips"]')
        console.visible("confirm-dialog")
        assert "Pause the queue clips?" in console.driver.find_element(By.ID, "confirm-text").text
        console.driver.find_element(By.ID, "confirm-ok").click()
        console.present(f'{card} button[aria-label="Resume the queue clips"]')
        assert "paused" in console.driver.find_element(By.CSS_SELECTOR, f"{card} h3").text
        assert paused_in_api(client, "clips")
        console.shoot("queue-paused")

        console.click(f'{card} button[aria-label="Resume the queue clips"]')
        console.visible("confirm-dialog")
        console.driver.find_element(By.ID, "confirm-ok").click()
        console.present(f'{card} button[aria-label="Pause the queue clips"]')
        assert "paused" not in console.driver.find_element(By.CSS_SELECTOR, f"{card} h3").text
        assert not paused_in_api(client, "clips")
    console.assert_no_console_errors()


def test_a_dead_letters_page_shows_its_trace_then_it_is_discarded(
    start_server: StartServer,
    make_console: MakeConsole,
    db_url: str,
    subtitled: Path,
    tmp_path: Path,
) -> None:
    server, token, _ = server_without_fonts(start_server, db_url, tmp_path)
    with api(server, token) as client:
        job_id = dead_letter_for_lack_of_fonts(client, subtitled)
        console = make_console(server)
        console.allow(UNAUTHORIZED)
        console.open(f"/console/#/admin/jobs/{job_id}")
        enter_key(console, token)

        # The job page: whose it is, the error code, and the trace folded away until asked.
        trace = '#job-trace[data-code="SUBTITLE_FONTS_MISSING"]'
        console.present(trace)
        page = console.driver.find_element(By.ID, "tab-job")
        assert "SUBTITLE_FONTS_MISSING" in page.find_element(By.CSS_SELECTOR, trace).text
        key = page.find_element(By.CSS_SELECTOR, ".facts [data-key-id]")
        assert key.text == key_id(token)
        pre = page.find_element(By.CSS_SELECTOR, f"{trace} details pre")
        assert not pre.is_displayed()
        console.click(f"{trace} details summary")
        console.until(lambda d: pre.is_displayed(), message="the traceback unfolded")
        assert "Traceback (most recent call last)" in pre.text
        assert "SubtitleFontsMissingError" in pre.text
        console.shoot("queue-job-trace", at="job-trace")

        # The jobs list: a Key column, and the filter by key asks GET /api/jobs?keyId=.
        console.driver.find_element(By.CSS_SELECTOR, '[data-tab="jobs"]').click()
        row = f'#jobs-list tr[data-job-id="{job_id}"]'
        console.present(row)
        field = console.driver.find_element(By.ID, "f-key")
        field.send_keys("someone-else")
        console.driver.find_element(By.CSS_SELECTOR, '#job-filters button[type="submit"]').click()
        console.until(lambda d: "No jobs match." in d.find_element(By.ID, "jobs-list").text)
        field.clear()
        field.send_keys(key_id(token))
        console.driver.find_element(By.CSS_SELECTOR, '#job-filters button[type="submit"]').click()
        console.present(row)
        cell = console.driver.find_element(By.CSS_SELECTOR, f"{row} [data-key-id]")
        assert cell.text == key_id(token)

        # Discard its dead letter: asked first; the letter goes, the job stays failed.
        console.driver.find_element(By.CSS_SELECTOR, '[data-tab="dlq"]').click()
        letter = f'[data-code="SUBTITLE_FONTS_MISSING"] li[data-job-id="{job_id}"]'
        console.click(f"{letter} button.danger")
        console.visible("confirm-dialog")
        assert job_id in console.driver.find_element(By.ID, "confirm-text").text
        console.driver.find_element(By.ID, "confirm-ok").click()
        console.until(lambda d: "Discarded 1." in d.find_element(By.ID, "dlq-message").text)
        assert not console.driver.find_elements(By.CSS_SELECTOR, letter)
        assert client.get("/api/dlq/groups").json() == []  # it was the only one
        assert client.get(f"/api/dlq/{job_id}").status_code == 404
        assert status_of(client, job_id) == "failed"
    console.assert_no_console_errors()


def test_a_retried_attempts_error_shows_on_the_timeline(
    start_server: StartServer, make_console: MakeConsole, db_url: str, subtitled: Path
) -> None:
    server = start_server()  # keys off: no prompt
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job_id = submit(client, subtitled, start="00:00:00.500", end="00:00:01.500")
    # A retry event as the worker's retry transaction writes it (a transient failure is
    # not something a test can summon on cue).
    error = "FetchError: the connection was reset\nwhile reading the source"
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO job_events (job_id, type, payload) VALUES (%s, 'retry', %s)",
            (
                job_id,
                psycopg.types.json.Jsonb(
                    {"attempt": 1, "error": error, "next_run_at": "2026-12-01T17:00:05+00:00"}
                ),
            ),
        )
    console = make_console(server)
    console.open(f"/console/#/admin/jobs/{job_id}")
    [retry] = console.present('#tab-job .events li[data-type="retry"]')
    assert "attempt 1 failed" in retry.text
    assert retry.find_element(By.CSS_SELECTOR, "pre").text == error  # its lines kept
    console.assert_no_console_errors()
