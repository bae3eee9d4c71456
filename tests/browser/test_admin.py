"""Run the queue from the browser, with API keys on: the key prompt (and a rejected key),
a running job seen in the overview, and a dead letter requeued."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.api.conftest import create_key
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


def test_a_running_job_shows_in_the_overview(
    start_server: StartServer, make_console: MakeConsole, db_url: str, long_talk: Path
) -> None:
    # A worker's row names the jobs it runs as of its last heartbeat: a third of the lease
    # (QUEUE_VISIBILITY_SEC) apart, 30 s by default; 5 s here, so the job shows in time.
    server = start_server(ENABLE_API_KEYS="true", QUEUE_VISIBILITY_SEC="15")
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
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    server = start_server(ENABLE_API_KEYS="true", SUBTITLE_FONTS_DIR=str(fonts))
    token = asyncio.run(create_key(db_url, admin=True))
    with api(server, token) as client:
        # No fonts to burn subtitles with: the setup's fault, dead-lettered at once.
        job_id = submit(
            client,
            subtitled,
            start="00:00:00.500",
            end="00:00:02.500",
            withSubtitles=True,
            burnSubtitles=True,
        )
        wait_until(lambda: status_of(client, job_id) == "failed", message="dead-lettered")
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
