"""Jobs may end `cancelled` (POST /api/jobs/{id}/cancel, `clipper jobs cancel`).

Revision ID: 0008_cancelled_jobs
Revises: 0007_tenancy
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008_cancelled_jobs"
down_revision = "0007_tenancy"
branch_labels = None
depends_on = None

_BEFORE = "status IN ('queued', 'processing', 'done', 'failed')"
_AFTER = "status IN ('queued', 'processing', 'done', 'failed', 'cancelled')"


def upgrade() -> None:
    op.drop_constraint("ck_jobs_status", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_status", "jobs", _AFTER)


def downgrade() -> None:
    # Cancelled jobs have no place in the earlier lifecycle: they go with the downgrade.
    op.execute("DELETE FROM jobs WHERE status = 'cancelled'")
    op.drop_constraint("ck_jobs_status", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_status", "jobs", _BEFORE)
