"""DATABASE_POOLER and QUEUE_LISTEN_URL: what they turn into for the queue and the
application's engine, and never a listen URL's password in an error or a repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clipper.queue import ConnectionTimeouts, QueueConfig, connection_kwargs
from clipper.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("DATABASE_URL", "DATABASE_POOLER", "QUEUE_LISTEN_URL", "QUEUE_POLL_INTERVAL_SEC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env file


def test_by_default_there_is_no_pooler_and_the_queue_listens_on_the_database_url() -> None:
    config = load_settings().queue_config()
    assert (config.pooler, config.listen_url, config.poll_only) == (None, None, False)


def test_transaction_pooling_without_a_listen_url_is_poll_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_POOLER", "Transaction")
    settings = load_settings()
    assert settings.pooler == "transaction"
    config = settings.queue_config()
    assert (config.pooler, config.listen_url, config.poll_only) == ("transaction", None, True)


def test_a_listen_url_is_spelled_for_libpq_and_kept_out_of_reprs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_POOLER", "transaction")
    monkeypatch.setenv("QUEUE_LISTEN_URL", "postgresql+psycopg://app:hunter2@db:5432/clipper")
    settings = load_settings()
    config = settings.queue_config()
    assert config.listen_url == "postgresql://app:hunter2@db:5432/clipper"
    assert not config.poll_only
    assert "hunter2" not in repr(config)
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DATABASE_POOLER", "statement"), ("QUEUE_LISTEN_URL", "http://app:hunter2@db/clipper")],
)
def test_a_bad_value_names_its_variable_and_hides_a_password(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_pooler_connections_prepare_nothing_and_send_no_startup_options() -> None:
    timeouts = ConnectionTimeouts(
        statement_seconds=2, lock_seconds=1, idle_in_transaction_seconds=3
    )
    direct = connection_kwargs(timeouts)
    assert direct["options"] == (
        "-c statement_timeout=2000 -c lock_timeout=1000 -c idle_in_transaction_session_timeout=3000"
    )
    assert "prepare_threshold" not in direct
    pooled = connection_kwargs(timeouts, "transaction")
    assert "options" not in pooled
    assert pooled["prepare_threshold"] is None
    assert {k: v for k, v in pooled.items() if k != "prepare_threshold"} == timeouts.libpq_kwargs()


def test_an_unknown_pooler_is_refused_by_the_library() -> None:
    with pytest.raises(ValueError, match="pooler"):
        QueueConfig(queue="clips", pooler="statement")  # type: ignore[arg-type]


_SESSION_STATE = {
    # A session-level advisory lock would stay on whichever server connection took it.
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    "temporary table": re.compile(r"\bCREATE\s+(LOCAL\s+|GLOBAL\s+)?TEMP(ORARY)?\b", re.I),
    "cursor held past its transaction": re.compile(r"\bWITH\s+HOLD\b", re.I),
    "LISTEN outside the listener": re.compile(r"[\"']LISTEN\s", re.I),
}


def test_nothing_in_clipper_keeps_session_state_a_transaction_pooler_would_lose() -> None:
    root = Path(__file__).resolve().parents[1] / "src" / "clipper"
    found = []
    for path in [*root.rglob("*.py"), *root.rglob("*.sql")]:
        text = path.read_text()
        for what, pattern in _SESSION_STATE.items():
            # The queue's listener, and the API's live changes hub, which follows its rule
            # (the listen URL past the pooler, else poll-only).
            if path.name in ("_listener.py", "live.py") and what.startswith("LISTEN"):
                continue
            found += [f"{path.relative_to(root)}: {what}" for _ in pattern.finditer(text)]
    assert found == []
