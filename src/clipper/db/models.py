"""Clipper's tables (the queue's own table lives in the queue schema, not here)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..domain.clips import CutMode
from ..domain.jobs import JobStatus, Priority, SourceType
from ..domain.uploads import UploadState

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: type[Any]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The API key that made the job ("local" with keys off): every read is scoped to it.
    tenant_id: Mapped[str] = mapped_column(Text, server_default=text("'local'"))
    status: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    progress: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    source_type: Mapped[str] = mapped_column(Text)
    upload_key: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    with_subtitles: Mapped[bool] = mapped_column(server_default=text("false"))
    burn_subtitles: Mapped[bool] = mapped_column(server_default=text("false"))
    subtitle_lang: Mapped[str | None] = mapped_column(Text)
    # An uploaded .srt sidecar to use instead of the source's own subtitle track.
    subtitles_upload_key: Mapped[str | None] = mapped_column(Text)
    result_video_key: Mapped[str | None] = mapped_column(Text)
    result_subtitles_key: Mapped[str | None] = mapped_column(Text)
    # The images asked with the clip (output.thumbnail, output.preview), beside it.
    result_thumbnail_key: Mapped[str | None] = mapped_column(Text)
    result_preview_key: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Unique per tenant: two tenants may use the same Idempotency-Key.
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    # A hash of the request a key was first used with: the same key with another body is 409.
    request_fingerprint: Mapped[str | None] = mapped_column(Text)
    # The batch (POST /api/jobs/batch) the job was submitted in, if any.
    batch_id: Mapped[uuid.UUID | None]
    # Called (a signed POST) when the job ends; falls back to the key's callback_url.
    callback_url: Mapped[str | None] = mapped_column(Text)
    # How the clip is cut (domain.clips.CutMode), and where in the source it starts once done.
    cut_mode: Mapped[str] = mapped_column(Text, server_default=text("'exact'"))
    actual_start_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The output choices (domain.outputs.OutputOptions.to_json); None: all the defaults.
    output: Mapped[dict[str, Any] | None]
    # Where a done job's subtitles came from (domain.subtitles.SubtitlesMade.to_json).
    subtitles: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(_one_of("status", JobStatus), name="status"),
        CheckConstraint(_one_of("priority", Priority), name="priority"),
        CheckConstraint(_one_of("source_type", SourceType), name="source_type"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("start_ms >= 0 AND start_ms < end_ms", name="segment"),
        CheckConstraint(
            "(source_type = 'upload' AND upload_key IS NOT NULL AND source_url IS NULL) OR "
            "(source_type = 'youtube' AND source_url IS NOT NULL AND upload_key IS NULL)",
            name="one_source",
        ),
        CheckConstraint("NOT burn_subtitles OR with_subtitles", name="burn_needs_subtitles"),
        CheckConstraint(_one_of("cut_mode", CutMode), name="cut_mode"),
        UniqueConstraint("tenant_id", "idempotency_key"),
        # GET /api/jobs for one tenant: newest first, cursor (created_at, id).
        Index(None, "tenant_id", "created_at", "id"),
        # GET /api/jobs?status=…, and jobs-by-status counts for /metrics.
        Index(None, "status"),
        # GET /api/jobs: newest first, cursor (created_at, id).
        Index(None, "created_at", "id"),
        # Oldest queued job per priority (metrics, admin views).
        Index(None, "priority", "status"),
        # Retention: expired jobs.
        Index(None, "expires_at"),
        Index(None, "batch_id"),
        # Quotas: a tenant's unfinished jobs.
        Index(None, "tenant_id", "status"),
    )


class Upload(Base):
    """An upload and who owns it (the file itself is in storage under its key): stored, or a
    direct upload still pending (domain.uploads.UploadState)."""

    __tablename__ = "uploads"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default=text("'stored'"))
    # What the probe found it is; None while pending (not probed yet).
    kind: Mapped[str | None] = mapped_column(Text)
    # Stored: its size; pending: the size declared (and signed into its URL).
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # What the probe found (services.uploads): None for a sidecar, or an upload from before.
    media: Mapped[dict[str, Any] | None]
    # A direct upload's: the content type it declared, and when its URL expires.
    content_type: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('media', 'subtitles')", name="kind"),
        CheckConstraint(_one_of("state", UploadState), name="state"),
        CheckConstraint(
            "(state = 'stored' AND kind IS NOT NULL) OR "
            "(state = 'pending' AND expires_at IS NOT NULL)",
            name="state_facts",
        ),
        CheckConstraint("size_bytes >= 0", name="size"),
        # A tenant's stored bytes (the upload quota).
        Index(None, "tenant_id"),
        # Retention: pending uploads whose URL expired.
        Index(None, "state", "expires_at"),
    )


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    # GET /api/jobs/{id}/events: one job's events in order.
    __table_args__ = (Index(None, "job_id", "id"),)


class DlqJob(Base):
    __tablename__ = "dlq_jobs"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    # The public part of a `ck_<id>_<secret>` token; only a slow hash of the secret is kept.
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]
    # Limits of this key; None: the setting's default (KEY_RATE_PER_MINUTE, ...).
    rate_per_minute: Mapped[int | None]
    max_active_jobs: Mapped[int | None]
    max_upload_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The callback URL of the key's jobs that name none.
    callback_url: Mapped[str | None] = mapped_column(Text)
    # The webhook secret is derived from SIGNING_KEY, the key id and this version (never
    # stored); rotating it bumps the version.
    webhook_secret_version: Mapped[int] = mapped_column(server_default=text("1"))


class RateLimit(Base):
    """The request-rate state of one tenant, shared by every API process (GCRA)."""

    __tablename__ = "rate_limits"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    tenant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    # The theoretical arrival time: when the tenant's next request would be exactly on rate.
    tat: Mapped[datetime]
