"""Tenancy: every job and upload belongs to the API key that made it ("local" with keys off);
Idempotency-Keys are unique per tenant.

Revision ID: 0007_tenancy
Revises: 0006_queue_groups
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_tenancy"
down_revision = "0006_queue_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs made before tenancy belong to the local tenant, as they did in effect.
    op.add_column("jobs", sa.Column("tenant_id", sa.Text(), server_default="local", nullable=False))
    op.drop_constraint("uq_jobs_idempotency_key", "jobs", type_="unique")
    op.create_unique_constraint(
        "uq_jobs_tenant_id_idempotency_key", "jobs", ["tenant_id", "idempotency_key"]
    )
    op.create_index("ix_jobs_tenant_id_created_at_id", "jobs", ["tenant_id", "created_at", "id"])
    op.create_table(
        "uploads",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name="pk_uploads"),
        sa.CheckConstraint("kind IN ('media', 'subtitles')", name="ck_uploads_kind"),
        sa.CheckConstraint("size_bytes >= 0", name="ck_uploads_size"),
    )
    op.create_index("ix_uploads_tenant_id", "uploads", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_uploads_tenant_id", table_name="uploads")
    op.drop_table("uploads")
    op.drop_index("ix_jobs_tenant_id_created_at_id", table_name="jobs")
    op.drop_constraint("uq_jobs_tenant_id_idempotency_key", "jobs", type_="unique")
    op.create_unique_constraint("uq_jobs_idempotency_key", "jobs", ["idempotency_key"])
    op.drop_column("jobs", "tenant_id")
