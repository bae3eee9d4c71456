"""The queue's schema version 5 (the workers registry, and pickup latency in the stats),
installed by the queue's own installer like every queue version.

Revision ID: 0014_queue_workers
Revises: 0013_direct_uploads
Create Date: 2026-12-01
"""

from clipper.db.migrate import install_queue_schema

revision = "0014_queue_workers"
down_revision = "0013_direct_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_queue_schema()


def downgrade() -> None:
    """Nothing to undo: version 5 only adds a table and columns that earlier code ignores."""
