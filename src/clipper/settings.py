"""Clipper's configuration, read once per process from the environment (and `.env`)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .queue import ConnectionTimeouts, Pooler, QueueConfig

logger = logging.getLogger("clipper")

# Settings whose values may hold credentials: never echoed in errors or logs.
SECRET_SETTINGS = frozenset(
    {"DATABASE_URL", "QUEUE_LISTEN_URL", "ALERT_WEBHOOK_URL", "SIGNING_KEY"}
)
# The spellings DATABASE_URL accepts (db/urls.py, which this module may not import).
_POSTGRES_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and never shows a secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL; unset: an embedded PostgreSQL under .clipper/pgdata.",
    )
    # What DATABASE_URL leads to: PostgreSQL itself (`none`), or a transaction-pooling
    # PgBouncer (`transaction`): then no connection prepares statements or sends startup
    # options, the DB_* server timeouts become the role's defaults in the database, and the
    # queue listens only via QUEUE_LISTEN_URL (else polls). docs/service.md#pgbouncer.
    database_pooler: Literal["none", "transaction"] = Field(
        default="none", validation_alias="DATABASE_POOLER"
    )
    # A direct PostgreSQL URL for the queue's LISTEN connection, past the pooler; unset with
    # DATABASE_POOLER=transaction: poll-only, pickup within QUEUE_POLL_INTERVAL_SEC.
    queue_listen_url: SecretStr | None = Field(default=None, validation_alias="QUEUE_LISTEN_URL")
    # One engine: PostgreSQL. `pgboss` (the earlier version's value) is accepted as its alias.
    queue_provider: Literal["postgres", "pgboss"] = Field(
        default="postgres", validation_alias="QUEUE_PROVIDER"
    )
    queue_schema: str = Field(
        default="clipper_queue",
        validation_alias=AliasChoices("QUEUE_SCHEMA", "PG_BOSS_SCHEMA"),
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
    )
    queue_name: str = Field(default="clips", validation_alias="QUEUE_NAME", min_length=1)
    queue_visibility_sec: float = Field(default=90, validation_alias="QUEUE_VISIBILITY_SEC", gt=0)
    queue_max_attempts: int = Field(default=3, validation_alias="QUEUE_MAX_ATTEMPTS", ge=1)
    queue_retry_backoff_ms_base: int = Field(
        default=1000, validation_alias="QUEUE_RETRY_BACKOFF_MS_BASE", ge=0
    )
    queue_retry_backoff_ms_max: int = Field(
        default=60_000, validation_alias="QUEUE_RETRY_BACKOFF_MS_MAX", ge=0
    )
    queue_retry_jitter: float = Field(
        default=0.2, validation_alias="QUEUE_RETRY_JITTER", ge=0, le=1
    )
    queue_concurrency: int = Field(default=4, validation_alias="QUEUE_CONCURRENCY", ge=1, le=1000)
    queue_poll_interval_sec: float = Field(
        default=2.0, validation_alias="QUEUE_POLL_INTERVAL_SEC", gt=0
    )
    queue_shutdown_grace_sec: float = Field(
        default=30.0, validation_alias="QUEUE_SHUTDOWN_GRACE_SEC", ge=0
    )
    queue_pool_size: int = Field(default=10, validation_alias="QUEUE_POOL_SIZE", ge=2)
    # Deadlines of every database connection (see docs/service.md#timeouts); unset: derived
    # from QUEUE_VISIBILITY_SEC so a hung statement never outlasts a lease.
    db_connect_timeout_sec: float = Field(
        default=5, validation_alias="DB_CONNECT_TIMEOUT_SEC", gt=0
    )
    db_statement_timeout_sec: float | None = Field(
        default=None, validation_alias="DB_STATEMENT_TIMEOUT_SEC", gt=0
    )
    db_lock_timeout_sec: float | None = Field(
        default=None, validation_alias="DB_LOCK_TIMEOUT_SEC", gt=0
    )
    db_idle_in_transaction_timeout_sec: float | None = Field(
        default=None, validation_alias="DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC", gt=0
    )
    db_tcp_keepalive_idle_sec: float = Field(
        default=10, validation_alias="DB_TCP_KEEPALIVE_IDLE_SEC", gt=0
    )
    db_tcp_user_timeout_sec: float = Field(
        default=30, validation_alias="DB_TCP_USER_TIMEOUT_SEC", gt=0
    )
    retention_hours: float = Field(default=72, validation_alias="RETENTION_HOURS", gt=0)
    maintenance_interval_sec: float = Field(
        default=300, validation_alias="MAINTENANCE_INTERVAL_SEC", gt=0
    )
    auto_migrate: bool = Field(default=False, validation_alias="AUTO_MIGRATE")
    metrics_port: int = Field(default=9464, validation_alias="METRICS_PORT", ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    log_format: Literal["json", "text"] = Field(default="json", validation_alias="LOG_FORMAT")
    api_host: str = Field(default="127.0.0.1", validation_alias="API_HOST", min_length=1)
    api_port: int = Field(default=8080, validation_alias="API_PORT", ge=0, le=65535)
    enable_api_keys: bool = Field(default=False, validation_alias="ENABLE_API_KEYS")
    # Every API key's default limits (`clipper keys create/update` override them per key;
    # admin keys, and the local service with keys off, have none).
    key_rate_per_minute: int = Field(default=60, validation_alias="KEY_RATE_PER_MINUTE", ge=1)
    # Queued + processing: room for two full batches (50 clips each) at once.
    key_max_active_jobs: int = Field(default=100, validation_alias="KEY_MAX_ACTIVE_JOBS", ge=1)
    key_max_upload_mb: float = Field(default=2000, validation_alias="KEY_MAX_UPLOAD_MB", gt=0)
    clip_max_duration_sec: float = Field(
        default=120, validation_alias="CLIP_MAX_DURATION_SEC", gt=0
    )
    max_request_bytes: int = Field(default=65_536, validation_alias="MAX_REQUEST_BYTES", ge=1024)
    alert_webhook_url: SecretStr | None = Field(default=None, validation_alias="ALERT_WEBHOOK_URL")
    data_dir: Path = Field(default=Path(".clipper") / "data", validation_alias="DATA_DIR")
    # Object storage (docs/service.md#object-storage): s3://bucket/prefix keeps uploads and
    # results in any S3-compatible store (S3, R2, MinIO), its endpoint, region and credentials
    # read by the S3 client from AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION,
    # AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Unset: files under DATA_DIR.
    storage_url: str | None = Field(
        default=None,
        validation_alias="STORAGE_URL",
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$",
    )
    # `path` for a MinIO (or any store) reached by a host name that cannot take the bucket in it.
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", validation_alias="S3_ADDRESSING_STYLE"
    )
    # FFmpeg reads sources in the object store, and URL sources whose server takes ranges, by
    # byte range (docs/service.md#range-reads); false downloads every source whole first.
    source_range_reads: bool = Field(default=True, validation_alias="SOURCE_RANGE_READS")
    max_input_mb: float = Field(default=500, validation_alias="MAX_INPUT_MB", gt=0)
    max_clip_input_duration_sec: float = Field(
        default=7200, validation_alias="MAX_CLIP_INPUT_DURATION_SEC", gt=0
    )
    clip_max_runtime_sec: float = Field(default=600, validation_alias="CLIP_MAX_RUNTIME_SEC", gt=0)
    signing_key: SecretStr | None = Field(default=None, validation_alias="SIGNING_KEY")
    result_url_ttl_sec: int = Field(default=900, validation_alias="RESULT_URL_TTL_SEC", ge=10)
    # How long a direct upload's presigned PUT URL (POST /api/uploads/presigned) is valid: time
    # to start sending the file. At most 7 days, the longest a SigV4 presigned URL may live.
    upload_url_ttl_sec: int = Field(
        default=900, validation_alias="UPLOAD_URL_TTL_SEC", ge=60, le=7 * 24 * 3600
    )
    # Where clients reach the API (e.g. https://clips.example.com): result links are built on
    # it, never on a request's Host header, which a client controls. Unset: the request's.
    public_base_url: AnyHttpUrl | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    subtitle_fonts_dir: Path = Field(
        default=Path("/usr/share/fonts"), validation_alias="SUBTITLE_FONTS_DIR"
    )
    # Subtitles from speech (docs/service.md#subtitles): the faster-whisper model, `tiny.en`
    # (packaged in the asr extra), another model's name (downloaded from the Hugging Face Hub
    # on first use, when the machine is online) or a model folder; where it runs, and how.
    asr_model: str = Field(default="tiny.en", validation_alias="ASR_MODEL", min_length=1)
    asr_device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", validation_alias="ASR_DEVICE")
    asr_compute_type: Literal[
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
        "default",
        "auto",
    ] = Field(default="int8", validation_alias="ASR_COMPUTE_TYPE")
    enable_ytdlp: bool = Field(default=False, validation_alias="ENABLE_YTDLP")
    allowlist_hosts: str = Field(default="", validation_alias="ALLOWLIST_HOSTS")
    fetch_timeout_sec: float = Field(default=300, validation_alias="FETCH_TIMEOUT_SEC", gt=0)

    @property
    def max_input_bytes(self) -> int:
        """MAX_INPUT_MB in bytes: the largest upload, or URL source fetched."""
        return int(self.max_input_mb * 2**20)

    @property
    def keep_finished_for(self) -> timedelta:
        """How long a finished (done, failed, cancelled) job and its files are kept."""
        return timedelta(hours=self.retention_hours)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """ALLOWLIST_HOSTS as a set (comma-separated host names; empty: any public host)."""
        return frozenset(h.strip().lower() for h in self.allowlist_hosts.split(",") if h.strip())

    @field_validator("asr_model")
    @classmethod
    def _model_folder(cls, value: str) -> str:
        # A path (not a Hub name such as Systran/faster-whisper-small) must be a folder now,
        # not at the first job that needs it. The rule is media.speech.is_model_folder's,
        # spelled again: the shared settings may not import the media layer.
        if value.startswith(("/", ".", "~")) and not Path(value).expanduser().is_dir():
            raise ValueError("names no model folder (a path must be a faster-whisper model)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("queue_listen_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        if not _POSTGRES_SCHEME.match(url):
            raise ValueError(
                "must start with postgresql:// (or postgres://, postgresql+psycopg://)"
            )
        return SecretStr(_POSTGRES_SCHEME.sub("postgresql://", url, count=1))

    @property
    def pooler(self) -> Pooler | None:
        """DATABASE_POOLER as the queue library spells it (None: no pooler)."""
        return "transaction" if self.database_pooler == "transaction" else None

    @field_validator(
        "queue_provider",
        "log_format",
        "database_pooler",
        "asr_device",
        "asr_compute_type",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def connection_timeouts(self) -> ConnectionTimeouts:
        """One set of deadlines for the queue engine and the application's own engine."""
        overrides = {
            "statement_seconds": self.db_statement_timeout_sec,
            "lock_seconds": self.db_lock_timeout_sec,
            "idle_in_transaction_seconds": self.db_idle_in_transaction_timeout_sec,
        }
        return ConnectionTimeouts.for_visibility(
            self.queue_visibility_sec,
            connect_seconds=self.db_connect_timeout_sec,
            keepalive_idle_seconds=self.db_tcp_keepalive_idle_sec,
            tcp_user_timeout_seconds=self.db_tcp_user_timeout_sec,
            **{name: value for name, value in overrides.items() if value is not None},
        )

    def queue_config(self) -> QueueConfig:
        return QueueConfig(
            queue=self.queue_name,
            schema=self.queue_schema,
            visibility_seconds=self.queue_visibility_sec,
            max_attempts=self.queue_max_attempts,
            backoff_base_ms=self.queue_retry_backoff_ms_base,
            backoff_max_ms=self.queue_retry_backoff_ms_max,
            backoff_jitter=self.queue_retry_jitter,
            concurrency=self.queue_concurrency,
            poll_interval_seconds=self.queue_poll_interval_sec,
            shutdown_grace_seconds=self.queue_shutdown_grace_sec,
            retention_hours=self.retention_hours,
            pool_max_size=self.queue_pool_size,
            timeouts=self.connection_timeouts(),
            pooler=self.pooler,
            listen_url=self.queue_listen_url.get_secret_value() if self.queue_listen_url else None,
            worker_version=clipper_version(),
        )


def clipper_version() -> str:
    """The installed package's version (what workers report in the queue's registry)."""
    try:
        return metadata.version("clipper")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def load_settings() -> Settings:
    """Build the settings, turning validation errors into one ConfigError line per setting."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    if settings.queue_provider == "pgboss":
        logger.warning("QUEUE_PROVIDER=pgboss is an alias: using Clipper's PostgreSQL queue")
    if settings.queue_retry_backoff_ms_base > settings.queue_retry_backoff_ms_max:
        raise ConfigError(
            "invalid setting QUEUE_RETRY_BACKOFF_MS_BASE: must not exceed "
            "QUEUE_RETRY_BACKOFF_MS_MAX"
        )
    timeouts = settings.connection_timeouts()
    visibility = settings.queue_visibility_sec
    for name, seconds, why in (
        ("DB_STATEMENT_TIMEOUT_SEC", timeouts.statement_seconds, "a hung heartbeat"),
        (
            "DB_IDLE_IN_TRANSACTION_TIMEOUT_SEC",
            timeouts.idle_in_transaction_seconds,
            "a frozen worker's row locks",
        ),
    ):
        if seconds >= visibility:
            raise ConfigError(
                f"invalid setting {name}: must be shorter than QUEUE_VISIBILITY_SEC "
                f"({visibility:g}), or {why} would outlast the lease"
            )
    return settings


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = str(error["loc"][0]) if error["loc"] else ""
        names = _ENV_NAMES.get(location, (location.upper(),))
        text = f"invalid setting {' / '.join(names)}: {error['msg']}"
        if not SECRET_SETTINGS.intersection(names) and isinstance(
            error.get("input"), str | int | float
        ):
            text += f" (got {error['input']!r})"
        problems.append(text)
    return "; ".join(problems)


def _env_names(field_name: str) -> tuple[str, ...]:
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (str(alias or field_name.upper()),)


# Errors locate a setting by field name or by the alias it was read from; both map here.
_ENV_NAMES = {
    key: _env_names(name) for name in Settings.model_fields for key in (name, *_env_names(name))
}
