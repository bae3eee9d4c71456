"""Make a clip in a real browser: upload a generated video, set in and out with the keys,
submit, watch it reach done, download the clip and check its length; subtitles from speech
say where they came from; and cancel a long one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from clipper.media.probe import probe
from tests.browser.actions import (
    choose,
    invalid,
    press,
    set_field,
    set_timecode,
    status,
    text,
    value,
)
from tests.browser.conftest import MakeConsole, StartServer
from tests.media_files import make_video

# A clip's length is whole frames (25 a second): within a frame and a half of the range.
TOLERANCE_MS = 60


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("browser") / "talk.mp4", seconds=10)


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("browser") / "long.mp4", seconds=90, size="960x540")


def test_a_clip_made_with_the_keyboard_downloads_at_its_length(
    start_server: StartServer, make_console: MakeConsole, talk: Path
) -> None:
    server = start_server()
    console = make_console(server)
    console.open("/#/clips")
    console.until(lambda d: "No clips yet" in d.find_element(By.ID, "clips-list").text)
    console.shoot("my-clips-empty")

    console.open("/")
    console.shoot("make-a-clip-start")
    choose(console, talk, 10)
    console.js("document.activeElement && document.activeElement.blur()")
    # The playhead to 2 s (two 1-second steps), I; on to 5 s, then 5 frames more, O.
    press(console, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, shift=True)
    press(console, "i")
    press(console, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, shift=True)
    press(console, *[Keys.ARROW_RIGHT] * 5)
    press(console, "o")
    assert (value(console, "in-input"), value(console, "out-input")) == (
        "00:00:02.000",
        "00:00:05.200",
    )
    assert text(console, "clip-length") == "3.2 s"
    console.shoot("make-a-clip-range", at="editor")

    # A range the API would refuse is refused here first, in words.
    set_timecode(console, "out-input", "00:00:01.000")
    assert "after the in point" in console.visible("range-error").text
    console.shoot("make-a-clip-refused", at="clip-form")
    set_timecode(console, "out-input", "00:00:05.200")
    assert not console.driver.find_element(By.ID, "range-error").is_displayed()

    # What only the API knows comes in its own words: this source has no German track, and
    # the server's speech model (the packaged tiny.en) hears English only.
    console.driver.find_element(By.ID, "with-subtitles").click()
    set_field(console, "subtitle-lang", "de")
    console.driver.find_element(By.ID, "submit").click()
    refusal = console.visible("submit-error")
    console.until(lambda _: "subtitleLang" in refusal.text, message="the API's message")
    assert "ASR_MODEL" in refusal.text, refusal.text
    assert invalid(console, "subtitle-lang")
    console.shoot("make-a-clip-subtitles-refused", at="clip-form")
    console.collect_log()  # that 422 is logged as a failed load: expected
    console.errors = [e for e in console.errors if " 422 " not in e["message"]]
    set_field(console, "subtitle-lang", "auto")
    assert not invalid(console, "subtitle-lang")
    console.driver.find_element(By.ID, "with-subtitles").click()

    console.driver.find_element(By.ID, "submit").click()
    console.visible("job-panel")
    console.until(lambda _: status(console) == "done", timeout=90, message="the job done")
    # Pushed by the server (GET /api/jobs/{id}/stream), not polled.
    assert console.driver.find_element(By.ID, "job-panel").get_attribute("data-via") == "stream"
    console.visible("result")
    console.until(
        lambda d: d.execute_script(
            "return document.getElementById('result-player').readyState >= 1"
        ),
        message="the result plays",
    )
    assert "expires" in text(console, "link-expiry")
    console.shoot("make-a-clip-done", at="job-panel")

    console.driver.find_element(By.ID, "download").click()
    clip = console.downloaded()
    info = asyncio.run(probe(clip))
    assert abs(info.duration_ms - 3_200) <= TOLERANCE_MS, info.duration_ms
    assert (info.has_video, info.has_audio) == (True, True)

    job_id = console.driver.find_element(By.ID, "job-panel").get_attribute("data-job-id")
    console.open("/#/clips")
    row = console.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"]'))
    assert "done" in row[0].text
    console.shoot("my-clips")
    console.assert_no_console_errors()


def test_subtitles_from_speech_say_where_they_came_from(
    start_server: StartServer, make_console: MakeConsole, talk: Path
) -> None:
    # No .srt and no track: the clip's speech is transcribed. The source's sound is a tone,
    # so the model hears nothing, and the job says so.
    server = start_server()
    console = make_console(server)
    console.open("/")
    choose(console, talk, 10)
    set_timecode(console, "out-input", "00:00:02.000")
    console.driver.find_element(By.ID, "with-subtitles").click()
    console.driver.find_element(By.ID, "submit").click()
    console.until(lambda _: status(console) == "done", timeout=90, message="the job done")
    made = console.visible("job-subtitles")
    assert made.get_attribute("data-source") == "speech"
    assert made.get_attribute("data-cues") == "0"
    assert "Subtitles: from speech (tiny.en, en) · no cues" in made.text, made.text
    note = text(console, "job-subtitles-note")
    assert note == "No speech was heard in the clip: the subtitles are empty.", note
    # The (empty) SRT is the job's, to download beside the clip.
    console.visible("download-srt")
    console.shoot("make-a-clip-subtitles-from-speech", at="job-panel")

    # The queue's page of the job says it too.
    job_id = console.driver.find_element(By.ID, "job-panel").get_attribute("data-job-id")
    job = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
    assert job["subtitles"]["source"] == "speech"
    console.open(f"/console/#/admin/jobs/{job_id}")
    fact = console.present("#tab-job [data-subtitles]")[0]
    assert fact.get_attribute("data-subtitles") == "speech"
    assert "from speech (tiny.en, en)" in fact.text, fact.text
    assert "No speech was heard" in fact.text, fact.text
    console.assert_no_console_errors()


def test_a_long_job_is_cancelled_from_the_page(
    start_server: StartServer, make_console: MakeConsole, long_talk: Path
) -> None:
    server = start_server()
    console = make_console(server)
    console.open("/")
    choose(console, long_talk, 90)
    # Between keyframes: a re-encode of most of the source, seconds of FFmpeg work.
    set_timecode(console, "in-input", "00:00:00.500")
    set_timecode(console, "out-input", "00:01:29.000")
    console.driver.find_element(By.ID, "submit").click()
    console.until(lambda _: status(console) == "processing", timeout=60, message="it runs")
    assert console.driver.find_element(By.ID, "job-panel").get_attribute("data-via") == "stream"
    console.shoot("make-a-clip-running", at="job-panel")
    console.driver.find_element(By.ID, "cancel").click()
    console.until(lambda _: status(console) == "cancelled", message="cancelled")
    assert "Cancelled" in text(console, "job-status")
    assert not console.driver.find_element(By.ID, "cancel").is_displayed()
    job_id = console.driver.find_element(By.ID, "job-panel").get_attribute("data-job-id")
    assert httpx.get(f"{server.url}/api/jobs/{job_id}").json()["status"] == "cancelled"
    console.assert_no_console_errors()
