"""The command line, run as a person runs it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.cli_helpers import clipper

COMMANDS = [
    [],
    ["up"],
    ["api"],
    ["worker"],
    ["cleanup"],
    ["seed"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["keys", "update"],
    ["keys", "webhook-secret"],
    ["db"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["db", "current"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "requeue"],
    ["queue"],
    ["queue", "stats"],
    ["queue", "publish"],
    ["queue", "retention"],
    ["jobs"],
    ["jobs", "cancel"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "clipper")
def test_every_command_has_help(command: list[str]) -> None:
    result = clipper(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout


def _count(url: str, state: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM clipper_queue.messages WHERE state = %s", (state,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_publish_stats_and_retention(db_url: str) -> None:
    published = clipper(
        "queue", "publish", "--count", "3", "--priority", "fast", DATABASE_URL=db_url
    )
    assert published.returncode == 0, published.stderr
    assert "published 3 of 3" in published.stdout
    assert _count(db_url, "ready") == 3
    stats = clipper("queue", "stats", DATABASE_URL=db_url)
    assert stats.returncode == 0, stats.stderr
    assert "clips" in stats.stdout
    assert " 3 " in stats.stdout
    retention = clipper("queue", "retention", DATABASE_URL=db_url)
    assert "deleted 0 finished message(s)" in retention.stdout
    assert _count(db_url, "ready") == 3  # unfinished messages stay


def test_pause_and_resume_show_in_stats_with_the_finished_totals(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO clipper_queue.stats (queue, minute, shard, completed, cancelled)"
            " VALUES ('clips', date_trunc('minute', now()), 0, 7, 2)"
        )
    paused = clipper("queue", "pause", DATABASE_URL=db_url)
    assert (paused.returncode, paused.stdout.strip()) == (0, "paused clips")
    stats = clipper("queue", "stats", DATABASE_URL=db_url)
    assert stats.returncode == 0, stats.stderr
    [row] = [line for line in stats.stdout.splitlines() if " clips " in line]
    assert [cell.strip() for cell in row.split("│")[6:11]] == ["7", "0", "0", "0", "2"]
    assert "yes" in row
    resumed = clipper("queue", "resume", DATABASE_URL=db_url)
    assert (resumed.returncode, resumed.stdout.strip()) == (0, "resumed clips")
    after = clipper("queue", "stats", DATABASE_URL=db_url)
    assert "yes" not in next(line for line in after.stdout.splitlines() if " clips " in line)


def test_dlq_list_shows_the_failed_jobs_records_in_full(db_url: str, tmp_path: Path) -> None:
    seeded = clipper("seed", "--count", "1", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert seeded.returncode == 0, seeded.stderr
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id FROM jobs WHERE status = 'failed'").fetchone()
    assert row is not None
    job_id = str(row[0])
    listed = clipper("dlq", "list", DATABASE_URL=db_url, COLUMNS="80")
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout  # whole, even on a narrow terminal
    assert "SAMPLE_FAILURE" in listed.stdout
    as_json = clipper("dlq", "list", "--json", DATABASE_URL=db_url)
    [record] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (record["jobId"], record["code"], record["message"]) == (
        job_id,
        "SAMPLE_FAILURE",
        "a seeded failure",
    )
    refused = clipper("dlq", "requeue", DATABASE_URL=db_url)
    assert refused.returncode == 2
    assert "name job ids, or pass --all" in refused.stderr


def test_bad_setting_is_one_line_naming_it() -> None:
    result = clipper(
        "queue",
        "stats",
        QUEUE_CONCURRENCY="many",
        DATABASE_URL="postgresql://u:hunter2@127.0.0.1:1/x",
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "invalid setting QUEUE_CONCURRENCY" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [("queue", "stats"), ("db", "current"), ("db", "upgrade"), ("keys", "list"), ("dlq", "list")],
)
def test_unreachable_database_is_a_clear_error_without_the_password(
    command: tuple[str, ...],
) -> None:
    result = clipper(*command, DATABASE_URL="postgresql://u:hunter2@127.0.0.1:1/x")
    assert result.returncode == 2
    assert "the database" in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "connection refused" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_keys_create_list_revoke(db_url: str) -> None:
    created = clipper("keys", "create", "--name", "ci bot", "--admin", DATABASE_URL=db_url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ck_")
    key_id = token.split("_")[1]
    listed = clipper("keys", "list", DATABASE_URL=db_url)
    assert key_id in listed.stdout
    assert "admin" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout  # the secret is never shown again
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT secret_hash FROM api_keys").fetchone()
    assert stored is not None
    assert stored[0].startswith("scrypt$")
    assert token.split("_", 2)[2] not in stored[0]
    assert "revoked" in clipper("keys", "revoke", key_id, DATABASE_URL=db_url).stdout
    again = clipper("keys", "revoke", key_id, DATABASE_URL=db_url)
    assert again.returncode == 2


def test_seed_then_cleanup(db_url: str, tmp_path: Path) -> None:
    seeded = clipper("seed", "--count", "1", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert seeded.returncode == 0, seeded.stderr
    with psycopg.connect(db_url) as conn:
        states: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM jobs GROUP BY 1").fetchall()
        )
        # Never processing: no worker holds a seeded job (tests/test_seed_cli.py).
        assert states == {"queued": 1, "done": 1, "failed": 1, "cancelled": 1}
        conn.execute(
            "UPDATE jobs SET expires_at = now() - interval '1 minute' WHERE expires_at IS NOT NULL"
        )
    dry_run = clipper("cleanup", "--dry-run", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert "3 expired job(s) would be deleted" in dry_run.stdout
    cleaned = clipper("cleanup", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert "deleted 3 expired job(s)" in cleaned.stdout
    with psycopg.connect(db_url) as conn:
        left: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM jobs GROUP BY 1").fetchall()
        )
    assert left == {"queued": 1}


def test_jobs_cancel_cancels_a_queued_job_and_refuses_a_finished_one(
    db_url: str, tmp_path: Path
) -> None:
    seeded = clipper("seed", "--count", "1", DATABASE_URL=db_url, DATA_DIR=str(tmp_path))
    assert seeded.returncode == 0, seeded.stderr
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (status) status, id FROM jobs ORDER BY status, id"
        ).fetchall()
    ids = {status: str(job_id) for status, job_id in rows}
    queued, done = ids["queued"], ids["done"]
    cancelled = clipper("jobs", "cancel", queued, DATABASE_URL=db_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"job {queued} is cancelled"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT state FROM clipper_queue.messages WHERE job_id = %s", (queued,)
        ).fetchone()
    assert row == ("cancelled",)
    refused = clipper("jobs", "cancel", done, DATABASE_URL=db_url)
    assert refused.returncode == 1
    assert "the job is done" in refused.stderr
    assert "Traceback" not in refused.stderr
    unknown = clipper("jobs", "cancel", str(uuid.uuid4()), DATABASE_URL=db_url)
    assert unknown.returncode == 1
