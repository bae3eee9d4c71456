"""The probe parses untrusted files in a child process with no secrets, a memory limit and a
time limit; the children are forked by a probe server. A named pipe stands in for a hostile
file: FFmpeg blocks opening it, so the child hangs (for as long as the test needs) exactly where
a demuxer stuck on a file would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import clipper.media.probe as probe_module
from clipper.media.errors import UnreadableMediaError
from clipper.media.probe import PROBE_MEMORY_BYTES, frame_at, probe, probe_upload
from tests.helpers import wait_for, wait_until
from tests.media_files import make_video

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the child from /proc")

# Room for the child to start and be killed, on a loaded machine.
SLACK_SECONDS = 3.0


@pytest.fixture
def hanging(tmp_path: Path) -> Path:
    path = tmp_path / "upload.mp4"
    os.mkfifo(path)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("probe") / "talk.mp4", 4)


def _stat(pid: int) -> tuple[str, int] | None:
    """The state and parent of `pid`, None once it is gone from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def alive(pid: int) -> bool:
    """Neither gone nor a zombie (nobody may reap an orphan in a container)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def servers(parent: int | None = None) -> list[int]:
    """The probe servers started by `parent` (this process by default), zombies too."""
    parent = os.getpid() if parent is None else parent
    found = []
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[1] != parent:
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        # probe_child.py, or the fake_child.py of a test
        if any(a.endswith(b"_child.py") for a in argv) and b"serve" in argv:
            found.append(pid)
    return found


def children_of(parents: list[int]) -> list[int]:
    return [pid for pid in _pids() if (stat := _stat(pid)) is not None and stat[1] in parents]


def probing() -> list[int]:
    """The probe children at work, or ended and not yet reaped: the children of our servers.
    (Their argv is the server's, and one stuck opening a file has no descriptor of it.) A
    test probes one file at a time, so these are the ones at work on its file."""
    return children_of(servers())


async def the_child() -> int:
    await wait_for(probing, message="the probe child to start")
    [pid] = probing()
    return pid


def environment(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def limit(pid: int, name: str) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            soft, hard = line[len(name) :].split()[:2]
            return soft, hard
    raise AssertionError(f"no {name} line")


def address_space_limit(pid: int) -> tuple[str, str]:
    return limit(pid, "Max address space")


def confined(pid: int) -> bool:
    """The child has set both limits of `_confine`: its memory, and no core dump."""
    memory = str(PROBE_MEMORY_BYTES)
    no_core = limit(pid, "Max core file size") == ("0", "0")
    return no_core and address_space_limit(pid) == (memory, memory)


def kill_servers() -> None:
    """SIGKILL our probe servers and wait until they are dead: the next probe starts one."""
    killed = [pid for pid in servers() if alive(pid)]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in killed), message="the servers to die")


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
    assert probing() == []  # its group was killed and it was reaped


async def test_the_child_has_no_secrets_and_a_memory_limit(
    hanging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server started before the secrets were set would prove nothing: start one with them.
    kill_servers()
    monkeypatch.setenv("SIGNING_KEY", "signing-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://clipper:db-secret@127.0.0.1/clipper")
    task = asyncio.create_task(probe(hanging))
    try:
        child = await the_child()
        [server] = [pid for pid in servers() if alive(pid)]
        environ, server_environ = environment(child), environment(server)
        # The limit is set by the child itself, first thing: wait until it has run that far.
        limit = str(PROBE_MEMORY_BYTES)
        await wait_for(
            lambda: address_space_limit(child) == (limit, limit), message="the memory limit"
        )
        # A session and group of its own (killed whole), and /, like its server's.
        assert os.getsid(child) == os.getpgid(child) == child
        assert os.readlink(f"/proc/{child}/cwd") == os.readlink(f"/proc/{server}/cwd") == "/"
        # Its stdin, and its two sockets to us: nothing of the server's (its socket to us,
        # other requests' sockets), which a child the file subverts could misuse.
        assert sorted(os.listdir(f"/proc/{child}/fd")) == ["0", "1", "2"]
    finally:
        task.cancel()
    assert environ == server_environ == b""  # not a single variable of the parent's
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("crash", [signal.SIGKILL, signal.SIGSEGV])
async def test_a_crashed_child_is_an_unreadable_file_and_the_server_lives_on(
    hanging: Path, video: Path, crash: signal.Signals
) -> None:
    task = asyncio.create_task(probe(hanging))
    child = await the_child()
    [server] = [pid for pid in servers() if alive(pid)]
    # Confined first: a SIGSEGV before RLIMIT_CORE is set would dump the file's bytes.
    await wait_for(lambda: confined(child), message="the child's limits")
    os.kill(child, crash)
    with pytest.raises(UnreadableMediaError, match="reading it failed") as refused:
        async with asyncio.timeout(SLACK_SECONDS):  # at once, not at the time limit
            await task
    assert str(hanging.parent) not in str(refused.value)
    assert probing() == []
    # The same server forks the next child: a crash ends one child, never the server.
    assert (await probe(video)).has_video
    assert [pid for pid in servers() if alive(pid)] == [server]


async def test_a_cancelled_probe_leaves_no_child(hanging: Path) -> None:
    task = asyncio.create_task(probe(hanging))
    await the_child()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probing() == []


async def test_a_probe_cancelled_at_any_step_leaves_no_child(hanging: Path, video: Path) -> None:
    """Cancelled before the request is sent, or after it but before the child has said who it
    is, or while it works: either no child, or it is found, killed and reaped."""
    await probe(video)  # a server is up: the steps below are the request's alone
    for steps in range(16):
        task = asyncio.create_task(probe(hanging))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert probing() == []


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


# A probe child that answers `output` (a Python expression) for any file, and exits 0: the
# server and the forking are the real ones, only the answer is not.
FAKE_CHILD = """
import os, sys
sys.path.insert(0, {folder!r})
import probe_child

def _answer(command, path, arguments):
    sys.stdout.write({output})
    sys.stdout.flush()
    os._exit(0)

probe_child._answer = _answer
probe_child.main(sys.argv[1:])
"""


@pytest.fixture
def answering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Have the probe children answer `output` from a server started for the test."""

    def answer(output: str) -> None:
        script = tmp_path / "fake_child.py"
        folder = str(probe_module._CHILD.parent)
        script.write_text(FAKE_CHILD.format(folder=folder, output=output))
        monkeypatch.setattr(probe_module, "_CHILD", script)
        kill_servers()

    yield answer
    kill_servers()  # the next test's probe starts a real one


@pytest.mark.parametrize(
    "output",
    [
        '"not JSON"',
        '"[1, 2]"',  # JSON, not an object
        """'{"info": {"duration_ms": "4000"}}'""",  # a field of the wrong type
        '"\\n0"',  # a forged exit status: the server's own comes after it
        '"x" * (2 << 20)',  # over the output limit
    ],
)
async def test_a_garbled_answer_is_an_unreadable_file(
    answering: Callable[[str], None], video: Path, output: str
) -> None:
    answering(output)
    with pytest.raises(UnreadableMediaError) as refused:
        await probe(video)
    assert str(refused.value) == "cannot read the input: reading it failed"
    assert str(video.parent) not in str(refused.value)


async def test_a_garbled_frame_is_an_unreadable_file(
    answering: Callable[[str], None], video: Path
) -> None:
    answering("""'{"frame": {"frame_ms": 1000}}'""")
    with pytest.raises(UnreadableMediaError, match="reading it failed"):
        await frame_at(video, 1000)


async def test_a_killed_server_is_replaced_by_the_next_probe(hanging: Path, video: Path) -> None:
    # Killed while its child works: the child dies with it, and that probe fails at once.
    task = asyncio.create_task(probe(hanging))
    child = await the_child()
    [server] = [pid for pid in servers() if alive(pid)]
    await wait_for(lambda: confined(child), message="the child's limits")
    os.kill(server, signal.SIGKILL)
    with pytest.raises(UnreadableMediaError, match="reading it failed"):
        async with asyncio.timeout(SLACK_SECONDS):
            await task
    await wait_for(lambda: not alive(child), message="the child to die with its server")
    # Killed between probes: the next one is sent at once, to a server that may still be
    # dying, or already dead; either way it is answered, by a new server.
    for _ in range(3):
        assert (await probe(video)).has_video
        [new] = [pid for pid in servers() if alive(pid)]
        assert new != server
        server = new
        os.kill(server, signal.SIGKILL)


async def test_eight_probes_at_once_each_get_their_own_answer(tmp_path: Path, video: Path) -> None:
    short = await asyncio.to_thread(make_video, tmp_path / "short.mp4", 2)
    paths = [video, short] * 4
    infos = await asyncio.gather(*(probe(path) for path in paths))
    assert [round(info.duration_ms / 1000) for info in infos] == [4, 2] * 4
    frames = await asyncio.gather(*(frame_at(path, 1000 + 40 * i) for i, path in enumerate(paths)))
    assert [frame.frame_ms // 40 if frame else None for frame in frames] == [
        25 + i for i in range(8)
    ]
    assert probing() == []


def test_event_loops_of_several_threads_probe_at_once(video: Path) -> None:
    def one(_: int) -> int:
        return asyncio.run(probe(video)).duration_ms

    with ThreadPoolExecutor(3) as pool:
        durations = list(pool.map(one, range(6)))
    assert all(abs(duration - 4_000) <= 100 for duration in durations)


def test_the_server_and_its_child_die_with_the_process_that_started_them(
    hanging: Path, video: Path
) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from clipper.media.probe import probe

        async def main() -> None:
            await probe(Path(sys.argv[1]))  # the server is up
            Path(sys.argv[3]).touch()
            await probe(Path(sys.argv[2]))  # its child hangs on the pipe until we are killed

        asyncio.run(main())
        """
    )
    probed = hanging.with_name("probed")
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(video), str(hanging), str(probed)]
    )
    try:
        wait_until(probed.exists, message="the first probe")
        wait_until(lambda: children_of(servers(process.pid)), message="the child to hang")
        [server] = servers(process.pid)
        [child] = children_of([server])
        wait_until(lambda: confined(child), message="the child's limits")
    finally:
        process.kill()  # SIGKILL: no cleanup of ours runs, the kernel's must do
        process.wait()
    wait_until(
        lambda: not alive(server) and not alive(child), message="the server and child to die"
    )
