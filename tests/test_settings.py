"""Settings: the earlier version's names and defaults, aliases, one clear line per bad value,
and never a secret in an error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clipper.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "DATABASE_URL",
        "QUEUE_PROVIDER",
        "QUEUE_SCHEMA",
        "PG_BOSS_SCHEMA",
        "QUEUE_VISIBILITY_SEC",
        "QUEUE_MAX_ATTEMPTS",
        "QUEUE_CONCURRENCY",
        "DB_STATEMENT_TIMEOUT_SEC",
        "DB_LOCK_TIMEOUT_SEC",
        "DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC",
        "ASR_MODEL",
        "ASR_DEVICE",
        "ASR_COMPUTE_TYPE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env file


def test_defaults_are_the_earlier_versions() -> None:
    settings = load_settings()
    config = settings.queue_config()
    assert settings.queue_provider == "postgres"
    assert (config.queue, config.visibility_seconds, config.max_attempts) == ("clips", 90, 3)
    assert (config.backoff_base_ms, config.backoff_max_ms, config.concurrency) == (1000, 60000, 4)
    assert config.retention_hours == 72
    assert settings.database_url is None


def test_pgboss_provider_and_schema_are_accepted_as_aliases(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QUEUE_PROVIDER", "pgboss")
    monkeypatch.setenv("PG_BOSS_SCHEMA", "legacy_queue")
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    assert settings.queue_provider == "pgboss"
    assert settings.queue_config().schema == "legacy_queue"
    assert "QUEUE_PROVIDER=pgboss is an alias" in caplog.text


def test_the_removed_memory_provider_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUEUE_PROVIDER", "memory")
    with pytest.raises(ConfigError, match=r"^invalid setting QUEUE_PROVIDER: .*'postgres'"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QUEUE_VISIBILITY_SEC", "soon"),
        ("QUEUE_VISIBILITY_SEC", "0"),
        ("QUEUE_MAX_ATTEMPTS", "0"),
        ("QUEUE_CONCURRENCY", "-1"),
        ("QUEUE_PROVIDER", "rabbit"),
        ("QUEUE_SCHEMA", "Drop Table"),
        ("RETENTION_HOURS", "forever"),
        ("ASR_MODEL", "/nonexistent/whisper-model"),
        ("ASR_MODEL", "./no-such-model"),
        ("ASR_MODEL", ""),
        ("ASR_DEVICE", "tpu"),
        ("ASR_COMPUTE_TYPE", "bogus"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert name in message
    assert "\n" not in message


def test_backoff_base_above_max_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_RETRY_BACKOFF_MS_BASE", "5000")
    monkeypatch.setenv("QUEUE_RETRY_BACKOFF_MS_MAX", "1000")
    with pytest.raises(ConfigError, match="QUEUE_RETRY_BACKOFF_MS_BASE"):
        load_settings()


def test_errors_never_show_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@db/clipper")
    monkeypatch.setenv("QUEUE_CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in repr(load_settings_safely(monkeypatch))


def load_settings_safely(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.delenv("QUEUE_CONCURRENCY")
    return load_settings()  # its repr must hide DATABASE_URL too


def test_database_deadlines_follow_the_visibility_window(monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts = load_settings().connection_timeouts()
    assert (timeouts.statement_seconds, timeouts.lock_seconds) == (15, 5)
    monkeypatch.setenv("QUEUE_VISIBILITY_SEC", "4")
    short = load_settings().queue_config().deadlines
    assert (short.statement_seconds, short.lock_seconds) == (2, 2)
    kwargs = short.libpq_kwargs()
    assert kwargs["keepalives"] == 1
    assert kwargs["tcp_user_timeout"] == 30_000
    assert "statement_timeout=2000" in short.server_options()
    assert "idle_in_transaction_session_timeout=2000" in short.server_options()


def test_a_statement_timeout_that_outlasts_the_lease_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUEUE_VISIBILITY_SEC", "10")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SEC", "10")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid setting DB_STATEMENT_TIMEOUT_SEC:")
    assert "QUEUE_VISIBILITY_SEC" in message
    assert "\n" not in message
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SEC", "2")
    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC", "12")
    with pytest.raises(ConfigError, match=r"^invalid setting DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC:"):
        load_settings()


def test_the_speech_model_settings_default_to_the_packaged_model_on_a_cpu() -> None:
    settings = load_settings()
    assert (settings.asr_model, settings.asr_device, settings.asr_compute_type) == (
        "tiny.en",
        "cpu",
        "int8",
    )


def test_the_speech_model_settings_are_read_case_insensitively(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASR_DEVICE", "CUDA")
    monkeypatch.setenv("ASR_COMPUTE_TYPE", "Float16")
    monkeypatch.setenv("ASR_MODEL", str(tmp_path))  # a folder that exists: checked at start
    settings = load_settings()
    assert (settings.asr_device, settings.asr_compute_type) == ("cuda", "float16")
    assert settings.asr_model == str(tmp_path)
    # A model's name (not a path) is the Hub's to resolve, when the first job needs it.
    monkeypatch.setenv("ASR_MODEL", "Systran/faster-whisper-small")
    assert load_settings().asr_model == "Systran/faster-whisper-small"


def test_a_speech_model_path_that_is_no_folder_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "model.bin"
    not_a_folder.write_bytes(b"weights")
    monkeypatch.setenv("ASR_MODEL", str(not_a_folder))
    with pytest.raises(ConfigError, match=r"^invalid setting ASR_MODEL:") as raised:
        load_settings()
    assert "\n" not in str(raised.value)
