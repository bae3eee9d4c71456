"""Uploads record what their probe found (duration, streams, codecs, size, bit depth, HDR), so
a job that cannot work with its upload is refused when it is made, not on a worker.

Revision ID: 0011_upload_media
Revises: 0010_cut_mode
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_upload_media"
down_revision = "0010_cut_mode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for subtitles sidecars, and for uploads stored before this revision (their jobs are
    # checked on the worker, as before).
    op.add_column("uploads", sa.Column("media", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("uploads", "media")
