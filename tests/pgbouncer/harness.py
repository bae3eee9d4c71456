"""A private PostgreSQL cluster and a real PgBouncer in front of it, both started by the test (or
the benchmark) on 127.0.0.1 and stopped at the end: Debian's binaries, files in a folder of
their own.

As root, both run as the `postgres` system user (neither may run as root), so their folder
lives outside pytest's temporary folders: any pytest session that starts meanwhile resets
/tmp/pytest-of-root to mode 0700, after which that user could no longer reach it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg

APP_ROLE = "clipper"
APP_DATABASE = "clipper"
_RUN_AS = "postgres" if os.geteuid() == 0 else None


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's binaries, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def pgbouncer_bin() -> str | None:
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"),) if p.exists()), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_connectable(url: str, what: str, timeout: float, **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2, **kwargs).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not accept connections: {exc}") from None
            time.sleep(0.05)


class Workspace:
    """A folder the cluster's and the pooler's user can use; removed by close()."""

    def __init__(self, prefix: str = "clipper-pgb-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.chown(self.root)

    @staticmethod
    def chown(path: Path) -> None:
        if _RUN_AS is not None:
            shutil.chown(path, _RUN_AS, _RUN_AS)

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        self.chown(path)
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Cluster:
    """PostgreSQL on 127.0.0.1 at a free port, trusting local TCP clients, with `settings`
    (max_connections above all) on its command line. Its log is `log_path`."""

    def __init__(self, workspace: Workspace, *, settings: Mapping[str, str] | None = None) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None, "no PostgreSQL under /usr/lib/postgresql"
        self._bin = bin_dir
        self.data = workspace.folder("pgdata")
        self.log_path = workspace.root / "postgres.log"
        self.port = free_port()
        self._settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            **(settings or {}),
        }

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        options = " ".join(f"-c {name}='{value}'" for name, value in self._settings.items())
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        _wait_connectable(self.url(), "PostgreSQL", 30)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self._bin / tool), *args],
            check=True,
            user=_RUN_AS,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.data,
        )

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_app_database(self) -> str:
        """An ordinary role owning its own database (as in production: not a superuser, so
        the role-level settings and connection limits apply as they would there)."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
            admin.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}")
        return self.url(APP_DATABASE, APP_ROLE)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class PgBouncer:
    """PgBouncer on 127.0.0.1 at a free port, every database name forwarded to `cluster`,
    `auth_type = trust` (the cluster trusts it in turn). `settings` override the [pgbouncer]
    section; `log_path` holds its output."""

    def __init__(
        self, workspace: Workspace, cluster: Cluster, settings: Mapping[str, str] | None = None
    ) -> None:
        binary = pgbouncer_bin()
        assert binary is not None, "pgbouncer is not installed"
        self._binary = binary
        self.folder = workspace.folder("pgbouncer")
        self.log_path = self.folder / "pgbouncer.log"
        self.port = free_port()
        self._settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.folder / "userlist.txt"),
            "admin_users": "postgres",
            "pool_mode": "transaction",
            "default_pool_size": "20",
            "max_client_conn": "1000",
            "logfile": str(self.log_path),
            **(settings or {}),
        }
        self._cluster = cluster
        self._process: subprocess.Popen[bytes] | None = None

    def ini_text(self) -> str:
        lines = ["[databases]", f"* = host=127.0.0.1 port={self._cluster.port}", "", "[pgbouncer]"]
        lines += [f"{name} = {value}" for name, value in self._settings.items()]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(self.ini_text())
        users = self.folder / "userlist.txt"
        users.write_text(f'"postgres" ""\n"{APP_ROLE}" ""\n')
        for path in (ini, users):
            Workspace.chown(path)
        self._process = subprocess.Popen(
            [self._binary, str(ini)],
            user=_RUN_AS,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_connectable(self.admin_url, "PgBouncer", 30, cursor_factory=psycopg.ClientCursor)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer"

    def url(self, database: str = APP_DATABASE, user: str = APP_ROLE) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW <what>` on the admin console (simple query protocol only)."""
        with psycopg.connect(
            self.admin_url, autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as admin:
            cursor = admin.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def cluster_and_pooler(
    *,
    cluster_settings: Mapping[str, str] | None = None,
    pooler_settings: Mapping[str, str] | None = None,
) -> Iterator[tuple[Cluster, PgBouncer]]:
    """Both started, with the application's role and database; both stopped (killed) and
    their folder removed at the end."""
    workspace = Workspace()
    cluster = Cluster(workspace, settings=cluster_settings)
    pooler = PgBouncer(workspace, cluster, pooler_settings)
    try:
        cluster.start()
        cluster.create_app_database()
        pooler.start()
        yield cluster, pooler
    finally:
        pooler.stop()
        cluster.stop()
        workspace.close()
