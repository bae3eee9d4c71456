"""Jobs may name an uploaded .srt sidecar for their subtitles.

Revision ID: 0004_subtitles_upload
Revises: 0003_api_keys
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_subtitles_upload"
down_revision = "0003_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("subtitles_upload_key", sa.Text()))


def downgrade() -> None:
    op.drop_column("jobs", "subtitles_upload_key")
