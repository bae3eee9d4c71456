"""The pieces of the console's browser tests: `clipper up` on a test database, and Debian's
chromium driven headless through its own chromedriver (Selenium Manager never runs: the
driver's path is given, so nothing is downloaded)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.cli_helpers import CLIPPER, ROOT, environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
SIZES = {"phone": (375, 812), "desktop": (1280, 800)}
THEMES = ("light", "dark")


def require_chromium() -> None:
    """Skip where chromium is not installed, but fail in CI (.ci/run installs it):
    integration tests never skip there."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        reason = f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI runs every test")
        pytest.skip(reason)


@dataclass
class Server:
    """A running `clipper up` (API and worker) on its own database."""

    url: str
    db_url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)


@contextmanager
def clipper_up(db_url: str, data_dir: Path, **env: str) -> Iterator[Server]:
    process = subprocess.Popen(
        [*CLIPPER, "up"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment(DATABASE_URL=db_url, API_PORT="0", DATA_DIR=str(data_dir), **env),
    )
    assert process.stderr is not None
    log: list[str] = []
    url = None
    for line in process.stderr:
        log.append(line)
        if line.startswith("Clipper API on "):
            url = line.split()[3].rstrip("/")
            break
    if url is None:
        process.wait(timeout=10)
        raise AssertionError("clipper up did not start:\n" + "".join(log))
    # Keep reading its log, or the pipe fills and the service blocks on a write.
    stderr = process.stderr
    drain = threading.Thread(target=lambda: log.extend(stderr), daemon=True)
    drain.start()
    try:
        yield Server(url, db_url, data_dir, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.join(timeout=5)
        stderr.close()


def chrome(download_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-features=MediaRouter",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)}
    )
    return driver


class Console:
    """The console in one browser: navigation, waiting, screenshots and the browser's log."""

    def __init__(self, driver: webdriver.Chrome, server: Server, download_dir: Path) -> None:
        self.driver = driver
        self.server = server
        self.download_dir = download_dir
        self.errors: list[dict[str, Any]] = []
        # Console lines a test expects (a route answering 404 or 401 on purpose): regexes.
        self.allowed: list[re.Pattern[str]] = []

    def open(self, path: str = "/") -> None:
        self.driver.get(self.server.url + path)
        self.until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))

    def until(self, condition: Callable[[Any], Any], timeout: float = 30, message: str = "") -> Any:
        # Live views redraw as the server pushes: an element found may be replaced at once.
        wait = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=[StaleElementReferenceException, NoSuchElementException],
        )
        return wait.until(condition, message)

    def present(self, css: str, timeout: float = 30) -> list[WebElement]:
        """The elements `css` selects, once there is at least one."""
        found: list[WebElement] = self.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, css), timeout, css
        )
        return found

    def click(self, css: str, timeout: float = 30) -> None:
        """Click the element `css` selects, once it is there (again, if it was redrawn)."""
        self.until(lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True, timeout, css)

    def visible(self, element_id: str, timeout: float = 30) -> WebElement:
        def shown(driver: webdriver.Chrome) -> WebElement | bool:
            found = driver.find_elements("id", element_id)
            return found[0] if found and found[0].is_displayed() else False

        element: WebElement = self.until(shown, timeout, f"#{element_id} shown")
        return element

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def collect_log(self) -> None:
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        for entry in entries:
            if entry["level"] == "SEVERE" and not any(
                p.search(entry["message"]) for p in self.allowed
            ):
                self.errors.append(entry)

    def assert_no_console_errors(self) -> None:
        self.collect_log()
        assert self.errors == [], f"the browser logged errors: {self.errors}"

    def shoot(self, name: str, at: str | None = None) -> None:
        """PNGs of the page as it is now: light and dark, phone and desktop; scrolled to the
        element with id `at` when given."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": height,
                    "deviceScaleFactor": 1,
                    "mobile": size == "phone",
                },
            )
            if at is not None:
                self.js("document.getElementById(arguments[0]).scrollIntoView()", at)
            for theme in THEMES:
                self.driver.execute_cdp_cmd(
                    "Emulation.setEmulatedMedia",
                    {"features": [{"name": "prefers-color-scheme", "value": theme}]},
                )
                # Two frames, so layout and styles have settled after the change.
                self.js(
                    "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
                )
                self.driver.save_screenshot(str(SCREENSHOTS / f"{name}-{size}-{theme}.png"))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    def downloaded(self, timeout: float = 30) -> Path:
        """The one file the browser saved, once complete."""

        def done(_: object) -> Path | bool:
            files = [p for p in self.download_dir.iterdir() if not p.name.endswith(".crdownload")]
            partial = list(self.download_dir.glob("*.crdownload"))
            return files[0] if files and not partial else False

        path: Path = self.until(done, timeout, "the download")
        return path
