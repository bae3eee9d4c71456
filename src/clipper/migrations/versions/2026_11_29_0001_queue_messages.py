"""The queue engine's tables, installed by the queue itself (clipper.queue.install).

Revision ID: 0001_queue_messages
Revises:
Create Date: 2026-11-29
"""

from alembic import context, op

from clipper.db.migrate import install_queue_schema

revision = "0001_queue_messages"
down_revision = None
branch_labels = None
depends_on = None


def _schema() -> str:
    return str(context.config.attributes.get("queue_schema", "clipper_queue"))


def upgrade() -> None:
    install_queue_schema()


def downgrade() -> None:
    schema = op.get_bind().dialect.identifier_preparer.quote(_schema())
    op.execute(f"DROP TABLE {schema}.messages")
    op.execute(f"DROP TABLE {schema}.schema_version")
