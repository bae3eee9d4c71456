"""Start and stop worker processes for the fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    url: str,
    mode: str,
    concurrency: int = 4,
    visibility: float = 30.0,
    group_cap: int | None = None,
) -> subprocess.Popen[str]:
    cap = [] if group_cap is None else [str(group_cap)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.queue.worker_process",
            url,
            mode,
            str(concurrency),
            str(visibility),
            *cap,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the consumer is running
    assert line.strip() == "ready", f"worker did not start: {line!r}"
    return process


def _reap(process: subprocess.Popen[str], timeout: float) -> int:
    code = process.wait(timeout=timeout)
    if process.stdout is not None:
        process.stdout.close()
    return code


def sigkill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    _reap(process, 10)


def sigterm(process: subprocess.Popen[str], timeout: float = 20) -> int:
    process.send_signal(signal.SIGTERM)
    return _reap(process, timeout)
