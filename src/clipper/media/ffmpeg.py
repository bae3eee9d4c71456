"""Running FFmpeg: the binary from the imageio-ffmpeg wheel, progress from its own progress
output, a hard time limit, and no FFmpeg outliving the attempt or the worker that ran it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import cache, partial
from pathlib import Path

import imageio_ffmpeg

from ..errors import StorageFullError, says_disk_full
from .errors import FfmpegError, FfmpegTimeoutError
from .inputs import MediaInput, input_arguments

ProgressCallback = Callable[[float], Awaitable[None]]


async def ignore_progress(share: float) -> None:
    """For a run whose progress nobody follows (a quick extraction)."""


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@cache
def ffmpeg_path() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def segment_input(source: MediaInput, start_ms: int, duration_ms: int) -> list[str]:
    """Seek into `source` and take `duration_ms` from there (input seeking: fast, and it
    shifts the segment's timestamps to start at zero; a URL is read from there by range)."""
    return [
        "-y",
        "-ss",
        f"{start_ms / 1000:.3f}",
        *input_arguments(source),
        "-t",
        f"{duration_ms / 1000:.3f}",
    ]


async def run_ffmpeg(
    arguments: Sequence[str],
    *,
    duration_ms: int,
    on_progress: ProgressCallback,
    timeout_seconds: float,
) -> None:
    """Run FFmpeg to completion, reporting the share (0..1) of `duration_ms` written so far.
    Killed past `timeout_seconds` (FfmpegTimeoutError) or when the calling task is cancelled;
    a non-zero exit is FfmpegError."""

    async def report(key: str, value: str) -> None:
        if key == "out_time_us" and value.lstrip("-").isdigit() and duration_ms > 0:
            await on_progress(min(1.0, max(0.0, int(value) / 1000 / duration_ms)))

    await _run_reporting(arguments, report, timeout_seconds)


async def decoded_frames(path: Path, *, timeout_seconds: float) -> int:
    """How many frames of `path`'s first video stream FFmpeg decodes (the whole file, read to
    the end): a check that an image or clip FFmpeg wrote reads back. FfmpegError when it does
    not decode, FfmpegTimeoutError past `timeout_seconds`."""
    frames = 0

    async def count(key: str, value: str) -> None:
        nonlocal frames
        if key == "frame" and value.isdigit():
            frames = int(value)

    arguments = ["-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    await _run_reporting(arguments, count, timeout_seconds, storage_errors=False)
    return frames


async def _run_reporting(
    arguments: Sequence[str],
    on_report: Callable[[str, str], Awaitable[None]],
    timeout_seconds: float,
    *,
    storage_errors: bool = True,
) -> None:
    """Run FFmpeg with its progress report (key=value lines) handed to `on_report`, quiet but
    for errors; within `timeout_seconds` (FfmpegTimeoutError), killed with its group when the
    calling task is cancelled. A non-zero exit is FfmpegError, or StorageFullError when FFmpeg
    says its disk is full and `storage_errors` (it writes a file there)."""
    process = await _spawn(
        ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        *arguments,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    try:
        async with asyncio.timeout(timeout_seconds):
            async for line in process.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                await on_report(key, value)
            errors = (await stderr).decode(errors="replace").strip()
            await process.wait()
    except TimeoutError:
        raise FfmpegTimeoutError(f"FFmpeg ran longer than {timeout_seconds:g} s") from None
    finally:
        stderr.cancel()
        await _end(process)
    if process.returncode != 0:
        if storage_errors and says_disk_full(errors):  # the scratch disk: systemic, not the job's
            raise StorageFullError()
        raise FfmpegError(f"FFmpeg exited with {process.returncode}: {errors[-500:]}")


async def _spawn(program: str, *arguments: str) -> asyncio.subprocess.Process:
    """Start a child that dies with its worker: in a process group of its own (so `_end` kills
    it with anything it started) and with a parent-death signal. Callers must `_end` it.
    (Cancelled while starting, asyncio kills and reaps the child itself: FFmpeg starts no
    children of its own, so that is its whole group.)"""
    return await asyncio.create_subprocess_exec(
        program,
        *arguments,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_parent_death_signal(),
        # FFmpeg parses untrusted sources: it gets none of the worker's environment (the
        # database URL, SIGNING_KEY). It needs none: its path is absolute, fonts come from
        # fontconfig's system configuration.
        env={},
    )


def _parent_death_signal() -> Callable[[], None] | None:
    if sys.platform != "linux":
        return None
    return partial(_die_with_parent, _prctl(), os.getpid())


@cache
def _prctl() -> Callable[[int, int], int]:
    # Looked up in the worker: between fork and exec the child should do nothing but the call.
    return ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent(prctl: Callable[[int, int], int], parent: int) -> None:
    """Runs in the child between fork and exec. A SIGKILLed worker runs no cleanup code, so
    the kernel must kill FFmpeg when the worker dies. (The signal comes when the forking
    thread ends: asyncio forks on the event loop's thread, which lives as long as the worker.)"""
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the call: no signal will come
        os._exit(1)


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the child's whole group unless it exited (timed out, cancelled, or a progress
    callback failed), then reap it: no orphan, no zombie."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    # Shielded: a second cancellation must not stop the reaping half-way.
    await asyncio.shield(process.wait())
