"""The probe parses untrusted files in a child process with no secrets, a memory limit and a
time limit. A named pipe stands in for a hostile file: FFmpeg blocks opening it, so the child
hangs (for as long as the test needs) exactly where a demuxer stuck on a file would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipper.media.errors import UnreadableMediaError
from clipper.media.probe import PROBE_MEMORY_BYTES, probe, probe_upload
from tests.helpers import wait_for
from tests.media_files import make_video

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the child from /proc")

# Room for the child to start and be killed, on a loaded machine.
SLACK_SECONDS = 3.0


@pytest.fixture
def hanging(tmp_path: Path) -> Path:
    path = tmp_path / "upload.mp4"
    os.mkfifo(path)
    return path


def probing(path: Path) -> list[int]:
    """The pids of probe children at work on `path` (reaped ones are gone from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if os.fsencode(path) in argv and any(a.endswith(b"probe_child.py") for a in argv):
            found.append(int(entry.name))
    return found


async def the_child(path: Path) -> int:
    await wait_for(lambda: probing(path), message="the probe child to start")
    [pid] = probing(path)
    return pid


def environment(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def address_space_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no address space line")


async def test_a_real_file_is_probed_and_an_srt_is_told_apart(tmp_path: Path) -> None:
    video = await asyncio.to_thread(make_video, tmp_path / "talk.mp4", 4)
    info = await probe_upload(video)
    assert info is not None
    assert abs(info.duration_ms - 4_000) <= 100
    assert (info.has_video, info.has_audio) == (True, True)
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    assert await probe_upload(srt) is None


async def test_an_unreadable_file_is_refused_without_naming_its_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 1000)
    with pytest.raises(UnreadableMediaError) as refused:
        await probe_upload(corrupt)
    assert str(refused.value) == "cannot read the input: Invalid data found when processing input"
    assert str(tmp_path) not in str(refused.value)


async def test_a_hanging_file_is_refused_within_the_time_limit(hanging: Path) -> None:
    started = time.monotonic()
    with pytest.raises(UnreadableMediaError, match=r"took over 0\.5 s"):
        async with asyncio.timeout(0.5 + SLACK_SECONDS):
            await probe(hanging, timeout_seconds=0.5)
    assert time.monotonic() - started >= 0.5
    assert probing(hanging) == []  # its group was killed and it was reaped


async def test_the_child_has_no_secrets_and_a_memory_limit(
    hanging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNING_KEY", "signing-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://clipper:db-secret@127.0.0.1/clipper")
    task = asyncio.create_task(probe(hanging))
    try:
        pid = await the_child(hanging)
        environ = environment(pid)
        # The limit is set by the child itself, first thing: wait until it has run that far.
        limit = str(PROBE_MEMORY_BYTES)
        await wait_for(
            lambda: address_space_limit(pid) == (limit, limit), message="the memory limit"
        )
    finally:
        task.cancel()
    assert environ == b""  # not a single variable of the parent's
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_crashed_child_is_an_unreadable_file(hanging: Path) -> None:
    task = asyncio.create_task(probe(hanging))
    os.kill(await the_child(hanging), signal.SIGKILL)
    with pytest.raises(UnreadableMediaError, match="reading it failed"):
        async with asyncio.timeout(SLACK_SECONDS):  # at once, not at the time limit
            await task


async def test_a_cancelled_probe_leaves_no_child(hanging: Path) -> None:
    task = asyncio.create_task(probe(hanging))
    await the_child(hanging)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probing(hanging) == []


def test_the_api_and_the_worker_never_load_pyav() -> None:
    # FFmpeg's demuxers may only run in the probe child: importing PyAV anywhere in the
    # service processes would bring them back next to the secrets.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, clipper.api.app, clipper.worker.service, clipper.cli;"
            "print('av' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


async def test_a_path_relative_to_our_folder_is_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATA_DIR is relative by default (.clipper/data) while the child runs in /: the quickstart
    failed every clip with "No such file or directory" until paths were made absolute."""
    make_video(tmp_path / "talk.mp4", seconds=2)
    monkeypatch.chdir(tmp_path)
    info = await probe(Path("talk.mp4"))
    assert info.has_video
    assert 1900 <= info.duration_ms <= 2100
