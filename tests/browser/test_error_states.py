"""The console's error states in a real browser: an upload over MAX_INPUT_MB shows the
API's 413 message; a server whose database is gone says so (from /readyz)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from selenium.webdriver.common.by import By
from sqlalchemy.engine import make_url

from tests.browser.conftest import MakeConsole, StartServer
from tests.media_files import make_video


def test_an_upload_over_the_limit_shows_the_servers_message(
    start_server: StartServer, make_console: MakeConsole, tmp_path: Path
) -> None:
    server = start_server(MAX_INPUT_MB="0.05")  # 51 KiB: any real video is over it
    console = make_console(server)
    console.allow(r"/api/uploads - Failed to load resource: .* 413")
    console.open("/")
    assert "Up to 0.05 MB" in console.driver.find_element(By.ID, "upload-limit").text
    video = make_video(tmp_path / "big.mp4", seconds=6)
    assert video.stat().st_size > 0.05 * 2**20
    console.driver.find_element(By.ID, "file-input").send_keys(str(video))
    error = console.visible("upload-error")
    console.until(lambda _: "MAX_INPUT_MB" in error.text, message="the 413's message")
    assert "0.05 MB" in error.text
    console.shoot("make-a-clip-too-large", at="source-card")
    console.assert_no_console_errors()


def test_a_server_without_its_database_says_so(
    start_server: StartServer, make_console: MakeConsole, server_url: str
) -> None:
    server = start_server()
    console = make_console(server)
    console.allow(r"/readyz - Failed to load resource: .* 503")
    console.allow(r"/api/jobs.* - Failed to load resource: .* 503")
    console.open("/")
    assert not console.driver.find_element(By.ID, "banner").is_displayed()
    name = make_url(server.db_url).database
    assert name is not None
    with psycopg.connect(server_url, autocommit=True) as admin:  # the database goes away
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    console.open("/#/clips")
    banner = console.visible("banner")
    assert "not ready" in banner.text
    # The page looks again while not ready: the database's own check says so (the queue's
    # may be the first to fail).
    console.until(lambda _: "database" in banner.text, message="the database named")
    message = console.visible("clips-status")
    assert message.text  # the 503's own words where the list would be
    console.shoot("database-down")
    console.assert_no_console_errors()
    # Back (empty): `clipper up` then stops at once, not after its 30 s shutdown deadline.
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
