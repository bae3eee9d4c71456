"""What the console's tests do in the make-a-clip page, in the person's terms."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.harness import Console


def choose(console: Console, video: Path, seconds: float) -> None:
    """Choose `video` in the page; wait until it plays locally and is uploaded."""
    console.driver.find_element(By.ID, "file-input").send_keys(str(video))
    console.until(
        lambda d: d.execute_script(
            "const v = document.getElementById('player');"
            "return v.readyState >= 1 && v.duration >= arguments[0] - 0.1",
            seconds,
        ),
        message="the video loaded in the player",
    )
    console.until(
        lambda d: d.find_element(By.ID, "upload-status").get_attribute("data-state") == "done",
        message="the upload finished",
    )


def press(console: Console, *keys: str, shift: bool = False) -> None:
    actions = ActionChains(console.driver)
    if shift:
        actions.key_down(Keys.SHIFT)
    for key in keys:
        actions.send_keys(key)
    if shift:
        actions.key_up(Keys.SHIFT)
    actions.perform()


def value(console: Console, element_id: str) -> str:
    return str(console.driver.find_element(By.ID, element_id).get_attribute("value"))


def text(console: Console, element_id: str) -> str:
    return str(console.driver.find_element(By.ID, element_id).text)


def status(console: Console) -> str:
    return str(console.driver.find_element(By.ID, "job-panel").get_attribute("data-status"))


def set_timecode(console: Console, element_id: str, timecode: str) -> None:
    field = console.driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(timecode, Keys.TAB)  # `change` fires as focus leaves


def set_field(console: Console, element_id: str, text: str) -> None:
    """Type `text` in place of the field's value, as a person would."""
    field = console.driver.find_element(By.ID, element_id)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text)


def invalid(console: Console, element_id: str) -> bool:
    """Whether the field is marked invalid (aria-invalid), as a screen reader hears it."""
    found = console.driver.find_element(By.ID, element_id).get_attribute("aria-invalid")
    return found == "true"
