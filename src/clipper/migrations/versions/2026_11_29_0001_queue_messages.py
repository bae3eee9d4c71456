"""The queue engine's tables, installed by the queue itself (clipper.queue.install).

Revision ID: 0001_queue_messages
Revises:
Create Date: 2026-11-29
"""

from clipper.db.migrate import install_queue_schema, uninstall_queue_schema

revision = "0001_queue_messages"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_queue_schema()


def downgrade() -> None:
    uninstall_queue_schema()
