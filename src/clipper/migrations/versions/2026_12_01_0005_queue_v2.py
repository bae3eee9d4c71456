"""The queue's schema brought to its current version by the queue's own installer: databases
migrated before the queue owned its DDL get the versions added since.

Revision ID: 0005_queue_v2
Revises: 0004_subtitles_upload
Create Date: 2026-12-01
"""

from clipper.db.migrate import install_queue_schema

revision = "0005_queue_v2"
down_revision = "0004_subtitles_upload"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_queue_schema()


def downgrade() -> None:
    """Nothing to undo: the queue's versions only widen what the earlier schema allowed."""
