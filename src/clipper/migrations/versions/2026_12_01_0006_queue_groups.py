"""The queue's schema version 4 (groups and fair turns), installed by the queue's own
installer like every queue version.

Revision ID: 0006_queue_groups
Revises: 0005_queue_v2
Create Date: 2026-12-01
"""

from clipper.db.migrate import install_queue_schema

revision = "0006_queue_groups"
down_revision = "0005_queue_v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_queue_schema()


def downgrade() -> None:
    """Nothing to undo: version 4 only adds columns, an index and a table that earlier code
    ignores."""
