"""The queue engine's table: one row per message, in every state until retention.

Revision ID: 0001_queue_messages
Revises:
Create Date: 2026-11-29
"""

from alembic import context, op

revision = "0001_queue_messages"
down_revision = None
branch_labels = None
depends_on = None


def _schema() -> str:
    name = str(context.config.attributes.get("queue_schema", "clipper_queue"))
    return op.get_bind().dialect.identifier_preparer.quote(name)


def upgrade() -> None:
    schema = _schema()
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.execute(f"""
        CREATE TABLE {schema}.messages (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            queue        text        NOT NULL,
            job_id       uuid        NOT NULL,
            priority     smallint    NOT NULL CHECK (priority BETWEEN 0 AND 2),
            payload      jsonb,
            state        text        NOT NULL DEFAULT 'ready'
                         CHECK (state IN ('ready', 'active', 'completed', 'failed')),
            attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts integer     NOT NULL CHECK (max_attempts >= 1),
            run_after    timestamptz NOT NULL DEFAULT now(),
            lease_token  uuid,
            lease_until  timestamptz,
            last_error   jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            claimed_at   timestamptz,
            finished_at  timestamptz,
            CONSTRAINT messages_queue_job_id_key UNIQUE (queue, job_id),
            CONSTRAINT messages_lease_held CHECK ((state = 'active') = (lease_token IS NOT NULL))
        )
    """)
    # claim: ready messages in priority then FIFO order.
    op.execute(
        f"CREATE INDEX messages_ready_idx ON {schema}.messages (queue, priority, id) "
        "WHERE state = 'ready'"
    )
    # claim / next_due / claim_expired_final: active messages by lease expiry.
    op.execute(
        f"CREATE INDEX messages_active_lease_idx ON {schema}.messages (queue, lease_until) "
        "WHERE state = 'active'"
    )
    # retention: finished messages by age.
    op.execute(
        f"CREATE INDEX messages_finished_idx ON {schema}.messages (finished_at) "
        "WHERE state IN ('completed', 'failed')"
    )
    # Claims and acks update rows constantly; vacuum the table sooner than the default 20%.
    op.execute(
        f"ALTER TABLE {schema}.messages SET (autovacuum_vacuum_scale_factor = 0.02, "
        "autovacuum_analyze_scale_factor = 0.02)"
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {_schema()}.messages")
