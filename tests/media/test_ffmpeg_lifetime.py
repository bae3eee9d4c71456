"""FFmpeg never outlives its attempt or its worker: cancelled, timed out or orphaned by a
SIGKILLed worker, it (and its whole process group) is gone within 2 s. Real processes, found
by scanning /proc (no hooks in the code under test)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.media import ffmpeg
from clipper.media.errors import FfmpegTimeoutError
from tests.helpers import wait_event, wait_for, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

# An endless source read in real time: FFmpeg runs until killed, using next to no CPU.
ENDLESS = ["-re", "-f", "lavfi", "-i", "nullsrc=size=16x16:rate=5", "-f", "null", "-"]
GONE_WITHIN_SECONDS = 2.0

# A worker in miniature: runs FFmpeg on the arguments it is given until it is killed.
WORKER = """
import asyncio, sys
from clipper.media.ffmpeg import run_ffmpeg

async def ignore(share: float) -> None:
    return None

asyncio.run(run_ffmpeg(sys.argv[1:], duration_ms=1000, on_progress=ignore, timeout_seconds=600))
"""


def _children(parent: int) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # The parent pid is the second field after the (parenthesised) command name.
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    yield int(entry.name)


def _ffmpeg_child(parent: int) -> int | None:
    """The pid of `parent`'s child that runs FFmpeg on ENDLESS (once exec'd, never before)."""
    wanted = "\0".join([ffmpeg.ffmpeg_path(), "-hide_banner"])
    for pid in _children(parent):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            if wanted in command and "\0".join(ENDLESS) in command:
                return pid
    return None


def _started_ffmpeg(parent: int) -> int:
    wait_until(lambda: _ffmpeg_child(parent) is not None, message="FFmpeg started")
    pid = _ffmpeg_child(parent)
    assert pid is not None
    return pid


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for PID 1 to reap it: it is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _reaped(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def _group_is_empty(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids to kill after the test, so a failing run leaves no endless process behind."""
    pids: list[int] = []
    yield pids
    for pid in filter(_running, pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _ignore(share: float) -> None:
    return None


def _start(timeout_seconds: float) -> asyncio.Task[None]:
    return asyncio.create_task(
        ffmpeg.run_ffmpeg(
            ENDLESS, duration_ms=1000, on_progress=_ignore, timeout_seconds=timeout_seconds
        )
    )


async def _started_ffmpeg_here() -> int:
    await wait_for(lambda: _ffmpeg_child(os.getpid()) is not None, message="FFmpeg started")
    pid = _ffmpeg_child(os.getpid())
    assert pid is not None
    return pid


async def test_cancelling_the_task_kills_and_reaps_ffmpeg_at_once() -> None:
    task = _start(timeout_seconds=600)
    pid = await _started_ffmpeg_here()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(GONE_WITHIN_SECONDS):
            await task
    assert _reaped(pid)  # killed and waited for: no zombie left
    assert _group_is_empty(pid)  # its own process group, killed whole


async def test_a_timed_out_ffmpeg_is_killed_and_reaped() -> None:
    task = _start(timeout_seconds=1)
    pid = await _started_ffmpeg_here()
    with pytest.raises(FfmpegTimeoutError):
        async with asyncio.timeout(1 + GONE_WITHIN_SECONDS):
            await task
    assert _reaped(pid)
    assert _group_is_empty(pid)


async def test_cancelling_kills_what_ffmpeg_itself_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leftovers: list[int]
) -> None:
    # A stand-in for FFmpeg that starts a child of its own, then reports progress (so the
    # test knows run_ffmpeg is past starting it): the kill must reach the whole group.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nsleep 600 &\necho out_time_us=0\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "ffmpeg_path", lambda: str(fake))
    reporting = asyncio.Event()

    async def on_progress(share: float) -> None:
        reporting.set()

    task = asyncio.create_task(
        ffmpeg.run_ffmpeg(ENDLESS, duration_ms=1000, on_progress=on_progress, timeout_seconds=600)
    )
    await wait_event(reporting, what="the fake's progress")
    (grandchild,) = _children(await _started_ffmpeg_here())
    leftovers.append(grandchild)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(GONE_WITHIN_SECONDS):
            await task
    await wait_for(
        lambda: not _running(grandchild),
        timeout=GONE_WITHIN_SECONDS,
        message="the grandchild killed",
    )


def test_ffmpeg_dies_with_a_sigkilled_worker(leftovers: list[int]) -> None:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, *ENDLESS])
    try:
        pid = _started_ffmpeg(worker.pid)
        leftovers.append(pid)
        worker.send_signal(signal.SIGKILL)  # no cleanup code runs: only the kernel can act
        worker.wait(timeout=10)
        wait_until(
            lambda: not _running(pid),
            timeout=GONE_WITHIN_SECONDS,
            message="FFmpeg gone after its worker was SIGKILLed",
        )
    finally:
        worker.kill()
        worker.wait()


async def test_ffmpeg_gets_none_of_the_workers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """FFmpeg parses untrusted media: a demuxer bug must not find the database URL or the
    signing key in its environment."""
    monkeypatch.setenv("SIGNING_KEY", "a-secret-signing-key")
    monkeypatch.setenv("DATABASE_URL", "postgresql://clipper:hunter2@db/clipper")
    task = _start(timeout_seconds=600)
    try:
        pid = await _started_ffmpeg_here()
        environ = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert environ == b""
