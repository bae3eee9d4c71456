"""Direct uploads: a client may ask for a presigned URL and send its bytes to the object store
itself. Its upload is recorded when it is asked for, pending until it is completed (checked
and probed), so only its tenant may complete it and its declared bytes count against the
tenant's quota from the start.

- uploads.state: `stored` (every earlier upload) or `pending`.
- uploads.kind: NULL while pending (known once probed).
- uploads.content_type, uploads.expires_at: what a direct upload declared, and when its URL
  expires (retention deletes a pending one some time after).

Revision ID: 0013_direct_uploads
Revises: 0012_output_options
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_direct_uploads"
down_revision = "0012_output_options"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "uploads", sa.Column("state", sa.Text(), server_default=sa.text("'stored'"), nullable=False)
    )
    op.add_column("uploads", sa.Column("content_type", sa.Text()))
    op.add_column("uploads", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.alter_column("uploads", "kind", nullable=True)
    op.create_check_constraint("ck_uploads_state", "uploads", "state IN ('pending', 'stored')")
    op.create_check_constraint(
        "ck_uploads_state_facts",
        "uploads",
        "(state = 'stored' AND kind IS NOT NULL) OR (state = 'pending' AND expires_at IS NOT NULL)",
    )
    op.create_index("ix_uploads_state_expires_at", "uploads", ["state", "expires_at"])


def downgrade() -> None:
    # Pending uploads cannot be told apart from stored ones before this revision: they go
    # (their objects, if any, are then unrecorded uploads, which retention deletes).
    op.execute("DELETE FROM uploads WHERE state = 'pending'")
    op.drop_index("ix_uploads_state_expires_at", table_name="uploads")
    op.drop_constraint("ck_uploads_state_facts", "uploads", type_="check")
    op.drop_constraint("ck_uploads_state", "uploads", type_="check")
    op.alter_column("uploads", "kind", nullable=False)
    op.drop_column("uploads", "expires_at")
    op.drop_column("uploads", "content_type")
    op.drop_column("uploads", "state")
