"""Jobs, their events and their dead-letter records.

Revision ID: 0002_jobs
Revises: 0001_queue_messages
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_jobs"
down_revision = "0001_queue_messages"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("progress", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("source_type", sa.Text(), nullable=False),
        sa.Column("upload_key", sa.Text()),
        sa.Column("source_url", sa.Text()),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("with_subtitles", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("burn_subtitles", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("subtitle_lang", sa.Text()),
        sa.Column("result_video_key", sa.Text()),
        sa.Column("result_subtitles_key", sa.Text()),
        sa.Column("error_code", sa.Text()),
        sa.Column("error_message", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("idempotency_key", sa.Text()),
        sa.Column("request_fingerprint", sa.Text()),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('queued', 'processing', 'done', 'failed')", name="ck_jobs_status"
        ),
        sa.CheckConstraint("priority IN ('fast', 'normal', 'bulk')", name="ck_jobs_priority"),
        sa.CheckConstraint("source_type IN ('upload', 'youtube')", name="ck_jobs_source_type"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="ck_jobs_progress"),
        sa.CheckConstraint("attempts >= 0", name="ck_jobs_attempts"),
        sa.CheckConstraint("start_ms >= 0 AND start_ms < end_ms", name="ck_jobs_segment"),
        sa.CheckConstraint(
            "(source_type = 'upload' AND upload_key IS NOT NULL AND source_url IS NULL) OR "
            "(source_type = 'youtube' AND source_url IS NOT NULL AND upload_key IS NULL)",
            name="ck_jobs_one_source",
        ),
        sa.CheckConstraint(
            "NOT burn_subtitles OR with_subtitles", name="ck_jobs_burn_needs_subtitles"
        ),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_created_at_id", "jobs", ["created_at", "id"])
    op.create_index("ix_jobs_priority_status", "jobs", ["priority", "status"])
    op.create_index("ix_jobs_expires_at", "jobs", ["expires_at"])
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_job_events_job_id_jobs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_job_events_job_id_id", "job_events", ["job_id", "id"])
    op.create_table(
        "dlq_jobs",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_dlq_jobs"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_dlq_jobs_job_id_jobs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("dlq_jobs")
    op.drop_table("job_events")
    op.drop_table("jobs")
