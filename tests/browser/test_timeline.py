"""The source player's other controls: drag a handle with the pointer, set in and out with
the buttons at the playhead, play and pause with Space, type a timecode; and the refusal of a
clip longer than CLIP_MAX_DURATION_SEC."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.actions import choose, press, set_timecode, value
from tests.browser.conftest import MakeConsole, StartServer
from tests.browser.harness import Console
from tests.media_files import make_video

PAUSED = "return document.getElementById('player').paused"


@pytest.fixture(scope="module")
def eight_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("timeline") / "eight.mp4", seconds=8)


def seconds(console: Console, element_id: str) -> float:
    h, m, s = value(console, element_id).split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_handles_buttons_space_and_typed_timecodes(
    start_server: StartServer, make_console: MakeConsole, eight_seconds: Path
) -> None:
    console = make_console(start_server(CLIP_MAX_DURATION_SEC="5"))
    console.open("/")
    choose(console, eight_seconds, 8)
    # Longer than the server allows (the whole 8 s source was not chosen: 5 s at most).
    assert value(console, "out-input") == "00:00:05.000"

    # Drag the out handle a quarter of the timeline to the left: 5 s - 2 s.
    handle = console.driver.find_element(By.ID, "handle-out")
    width = console.driver.find_element(By.ID, "timeline").size["width"]
    ActionChains(console.driver).drag_and_drop_by_offset(handle, -width // 4, 0).perform()
    assert abs(seconds(console, "out-input") - 3.0) < 0.15, value(console, "out-input")

    # The buttons take the playhead's time.
    console.js("document.activeElement.blur()")
    press(console, Keys.ARROW_RIGHT, shift=True)
    console.driver.find_element(By.ID, "set-in").click()
    assert value(console, "in-input") == "00:00:01.000"
    console.js("document.activeElement.blur()")
    press(console, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, shift=True)
    console.driver.find_element(By.ID, "set-out").click()
    assert value(console, "out-input") == "00:00:04.000"

    # Space plays, and pauses again.
    console.js("document.activeElement.blur()")
    press(console, " ")
    console.until(lambda d: not d.execute_script(PAUSED), message="playing")
    press(console, " ")
    console.until(lambda d: d.execute_script(PAUSED), message="paused")

    # Typed: too long for the server is refused here, before the API is asked.
    set_timecode(console, "in-input", "00:00:00.500")
    set_timecode(console, "out-input", "00:00:07.000")
    assert "at most 5.0 s" in console.visible("range-error").text
    console.driver.find_element(By.ID, "submit").click()
    assert "at most 5.0 s" in console.visible("submit-error").text
    set_timecode(console, "in-input", "not a time")
    assert "HH:MM:SS.mmm" in console.visible("range-error").text
    assert console.driver.find_element(By.ID, "in-input").get_attribute("aria-invalid") == "true"
    console.assert_no_console_errors()
