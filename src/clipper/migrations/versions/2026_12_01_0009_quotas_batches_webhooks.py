"""Per-key limits (request rate, active jobs, stored upload bytes), batches of jobs, and
completion webhooks.

- api_keys: overrides of the default limits (NULL: the setting), a default callback URL for
  the key's jobs, and the version of its webhook secret (the secret itself is derived from
  SIGNING_KEY and never stored).
- jobs: the batch a job was submitted in, and the URL to call when it ends.
- rate_limits: the request-rate state shared by every API process (GCRA: one "theoretical
  arrival time" per tenant). UNLOGGED: losing it in a crash only forgives some requests.

Revision ID: 0009_quotas_batches_webhooks
Revises: 0008_cancelled_jobs
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_quotas_batches_webhooks"
down_revision = "0008_cancelled_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("rate_per_minute", sa.Integer()))
    op.add_column("api_keys", sa.Column("max_active_jobs", sa.Integer()))
    op.add_column("api_keys", sa.Column("max_upload_bytes", sa.BigInteger()))
    op.add_column("api_keys", sa.Column("callback_url", sa.Text()))
    op.add_column(
        "api_keys",
        sa.Column("webhook_secret_version", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column("jobs", sa.Column("batch_id", sa.Uuid()))
    op.add_column("jobs", sa.Column("callback_url", sa.Text()))
    op.create_index("ix_jobs_batch_id", "jobs", ["batch_id"])
    # Quotas count a tenant's unfinished jobs.
    op.create_index("ix_jobs_tenant_id_status", "jobs", ["tenant_id", "status"])
    op.create_table(
        "rate_limits",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_rate_limits"),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_index("ix_jobs_tenant_id_status", table_name="jobs")
    op.drop_index("ix_jobs_batch_id", table_name="jobs")
    op.drop_column("jobs", "callback_url")
    op.drop_column("jobs", "batch_id")
    for column in (
        "webhook_secret_version",
        "callback_url",
        "max_upload_bytes",
        "max_active_jobs",
        "rate_per_minute",
    ):
        op.drop_column("api_keys", column)
