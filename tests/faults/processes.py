"""Real processes for the fault tests: started with their output in a log file, signalled for
real, and watched from outside (/proc, their /metrics endpoint, their JSON log lines)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cli_helpers import ROOT
from tests.faults.waiting import poll

# FFmpeg writes into the job's scratch folder, `clip-<job id>-<random>`: its command line
# names the job it cuts.
_SCRATCH_JOB = re.compile(r"/clip-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    # Clock ticks after boot: with the pid, names one process even if the pid is reused.
    started: int
    cmdline: tuple[str, ...]

    @property
    def job_id(self) -> str | None:
        found = _SCRATCH_JOB.search(" ".join(self.cmdline))
        return found.group(1) if found else None

    @property
    def is_ffmpeg(self) -> bool:
        return bool(self.cmdline) and "ffmpeg" in Path(self.cmdline[0]).name

    def alive(self) -> bool:
        """Still this very process, and not a zombie waiting to be reaped."""
        now = read_proc(self.pid)
        return now is not None and now.started == self.started and now.state != "Z"


def read_proc(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name sits in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        state=fields[0],
        started=int(fields[19]),
        cmdline=tuple(arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg),
    )


def children_of(pid: int) -> list[ProcInfo]:
    """Every live process whose parent is `pid` (any of its threads may have forked it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None and info.ppid == pid and info.state != "Z":
                found.append(info)
    return found


def sigkill(process: ProcInfo) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)


class Metrics:
    """One scrape of a Prometheus endpoint."""

    def __init__(self, text: str) -> None:
        self._samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        return sum(
            value
            for sample, sample_labels, value in self._samples
            if sample == name and labels.items() <= sample_labels.items()
        )


class Service:
    """One `clipper` process (or a test entry point), its stdout and stderr in `log_path`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        metrics_port: int | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.metrics_port = metrics_port
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def state(self) -> str | None:
        """The kernel's process state: R, S, T (stopped), Z..."""
        info = read_proc(self.pid)
        return None if info is None else info.state

    # --- its output ---------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Its JSON log lines (anything else it printed is skipped)."""
        records = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_output(self, found: Callable[[str], bool], *, timeout: float, what: str) -> str:
        """The first line of output for which `found` holds; fails early if the process
        exits, with the tail of its log."""

        def line() -> str | None:
            for text in self.log_text().splitlines():
                if found(text):
                    return text
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.tail()}"
                )
            return None

        return poll(line, timeout=timeout, message=f"{self.name}: {what}")

    # --- signals ------------------------------------------------------------------------

    def pause(self) -> None:
        """SIGSTOP, and wait until the kernel reports it stopped."""
        self.process.send_signal(signal.SIGSTOP)
        poll(lambda: self.state() == "T", timeout=5, message=f"{self.name} stopped")

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM: a graceful stop; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        """Whatever state it is in: continue it (a stopped process ignores SIGTERM), kill its
        FFmpeg children and itself, and reap."""
        if self.running():
            children = children_of(self.pid)
            self.process.send_signal(signal.SIGCONT)
            for child in children:
                sigkill(child)
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()

    # --- looking inside -----------------------------------------------------------------

    def ffmpeg(self) -> list[ProcInfo]:
        """Its FFmpeg children now running."""
        return [child for child in children_of(self.pid) if child.is_ffmpeg]

    def cutting(self) -> set[str]:
        """The ids of the jobs its FFmpeg children are cutting now."""
        return {job for child in self.ffmpeg() if (job := child.job_id) is not None}

    def scrape(self, timeout: float = 5.0) -> Metrics:
        assert self.metrics_port, f"{self.name} serves no metrics"
        response = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=timeout)
        response.raise_for_status()
        return Metrics(response.text)
