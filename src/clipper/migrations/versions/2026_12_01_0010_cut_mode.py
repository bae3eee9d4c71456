"""Jobs choose how they are cut: `exact` (the default, what every earlier job was) or `fast`
(from the keyframe at or before the start, by stream copy), and record where their clip
actually starts in the source once done.

Revision ID: 0010_cut_mode
Revises: 0009_quotas_batches_webhooks
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_cut_mode"
down_revision = "0009_quotas_batches_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("cut_mode", sa.Text(), server_default=sa.text("'exact'"), nullable=False)
    )
    op.add_column("jobs", sa.Column("actual_start_ms", sa.BigInteger()))
    op.create_check_constraint("ck_jobs_cut_mode", "jobs", "cut_mode IN ('exact', 'fast')")


def downgrade() -> None:
    op.drop_constraint("ck_jobs_cut_mode", "jobs", type_="check")
    op.drop_column("jobs", "actual_start_ms")
    op.drop_column("jobs", "cut_mode")
