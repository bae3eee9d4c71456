"""Every control of every view has a label and is reached by the keyboard, with a focus
ring that shows; at a phone's width nothing runs off the side of the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import MakeConsole, StartServer
from tests.browser.harness import Console
from tests.media_files import make_video

# The controls without a name a screen reader could say (label, aria-label or text).
UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea, button, a[href], [role=slider]')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
  .map(el => el.outerHTML.slice(0, 120));
"""
# Whether the focused element draws an outline (the :focus-visible ring).
FOCUS_RING = """
const el = document.activeElement;
if (el === document.body) return ["(body)", "solid", "past the last control"];
const style = getComputedStyle(el);
return [el.id || el.textContent.trim().slice(0, 30), style.outlineStyle, style.outlineWidth];
"""


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("a11y") / "short.mp4", seconds=4)


def tab_through(console: Console, presses: int) -> list[list[str]]:
    """Press Tab `presses` times: what took focus each time, and its outline."""
    console.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    seen = []
    for _ in range(presses):
        ActionChains(console.driver).send_keys(Keys.TAB).perform()
        seen.append(console.js(FOCUS_RING))
    return seen


def no_sideways_scroll(console: Console) -> bool:
    return bool(console.js("return document.documentElement.scrollWidth <= window.innerWidth"))


def test_the_make_a_clip_page_is_labelled_and_keyboard_reachable(
    start_server: StartServer, make_console: MakeConsole, short: Path
) -> None:
    console = make_console(start_server())
    console.open("/")
    console.driver.find_element(By.ID, "file-input").send_keys(str(short))
    console.until(
        lambda d: d.find_element(By.ID, "upload-status").get_attribute("data-state") == "done"
    )
    assert console.js(UNLABELLED) == []
    seen = tab_through(console, 30)
    reached = {name for name, _, _ in seen}
    for control in ("choose", "play", "set-in", "set-out", "handle-in", "handle-out"):
        assert control in reached, (control, seen)
    for control in ("in-input", "out-input", "priority", "with-subtitles", "submit"):
        assert control in reached, (control, seen)
    assert [s for s in seen if s[1] != "solid" or s[2] == "0px"] == [], seen

    # The in handle, focused, moves by the arrow keys (a second with Shift).
    console.driver.find_element(By.ID, "handle-in").send_keys(Keys.SHIFT, Keys.ARROW_RIGHT)
    assert console.driver.find_element(By.ID, "in-input").get_attribute("value") == "00:00:01.000"

    console.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )
    assert no_sideways_scroll(console)
    console.open("/#/clips")
    console.until(lambda d: d.find_element(By.ID, "clips-list").text)
    assert console.js(UNLABELLED) == []
    assert no_sideways_scroll(console)
    console.assert_no_console_errors()


def test_the_queue_pages_are_labelled(start_server: StartServer, make_console: MakeConsole) -> None:
    console = make_console(start_server())
    for page, ready in (
        ("/console/#/admin", "#workers table, #workers .empty"),
        ("/console/#/admin/jobs", "#jobs-list .empty, #jobs-list table"),
        ("/console/#/admin/dlq", "#tab-dlq .empty, #tab-dlq article"),
    ):
        console.open(page)
        console.present(ready)
        assert console.js(UNLABELLED) == [], page
    console.shoot("queue-jobs-empty")
    console.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )
    console.open("/console/#/admin")
    console.present("#workers table, #workers .empty")
    assert no_sideways_scroll(console)
    console.assert_no_console_errors()
