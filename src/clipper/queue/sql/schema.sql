-- The queue's schema, as numbered versions applied in order by `install()` (see _schema.py).
-- {schema} is replaced by the configured schema as a quoted identifier. A version, once
-- released, never changes: a change is a new version. Version 1 uses IF NOT EXISTS so that it
-- adopts a table made by Clipper's first Alembic revision, which held the same DDL.

-- version: 1
-- One row per message, in every state until retention.
CREATE TABLE IF NOT EXISTS {schema}.messages (
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
);
-- claim: ready messages in priority then FIFO order.
CREATE INDEX IF NOT EXISTS messages_ready_idx ON {schema}.messages (queue, priority, id)
    WHERE state = 'ready';
-- claim / next_due / claim_expired_final: active messages by lease expiry.
CREATE INDEX IF NOT EXISTS messages_active_lease_idx ON {schema}.messages (queue, lease_until)
    WHERE state = 'active';
-- retention: finished messages by age.
CREATE INDEX IF NOT EXISTS messages_finished_idx ON {schema}.messages (finished_at)
    WHERE state IN ('completed', 'failed');
-- Claims and acks update rows constantly; vacuum the table sooner than the default 20%.
ALTER TABLE {schema}.messages SET (autovacuum_vacuum_scale_factor = 0.02,
                                   autovacuum_analyze_scale_factor = 0.02);

-- version: 2
-- Priority is the caller's integer (lower runs first), not three fixed levels.
ALTER TABLE {schema}.messages DROP CONSTRAINT IF EXISTS messages_priority_check;

-- version: 3
-- Cancel: a message may end 'cancelled'; an active one is first asked to stop.
ALTER TABLE {schema}.messages DROP CONSTRAINT IF EXISTS messages_state_check;
ALTER TABLE {schema}.messages ADD CONSTRAINT messages_state_check
    CHECK (state IN ('ready', 'active', 'completed', 'failed', 'cancelled'));
ALTER TABLE {schema}.messages ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;
DROP INDEX IF EXISTS {schema}.messages_finished_idx;
CREATE INDEX messages_finished_idx ON {schema}.messages (finished_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
-- Pause: no message of a queue listed here as paused is claimed.
CREATE TABLE {schema}.queues (
    queue      text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Stats: what finished per queue and minute, counted by the statements that finish it (so
-- dashboards never scan the messages), in a few shards per minute so that concurrent
-- acknowledgements do not queue on one row. Readers sum the shards.
CREATE TABLE {schema}.stats (
    queue         text        NOT NULL,
    minute        timestamptz NOT NULL,
    shard         smallint    NOT NULL,
    completed     integer     NOT NULL DEFAULT 0,
    retried       integer     NOT NULL DEFAULT 0,
    failed        integer     NOT NULL DEFAULT 0,
    dead_lettered integer     NOT NULL DEFAULT 0,
    cancelled     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, minute, shard)
);

-- version: 4
-- Groups: a message may carry a group key (a tenant, say). Claims take turns among groups by
-- `turn`, a per-group turn number handed out at publish: a group's next message gets
-- max(its last turn + 1, the oldest turn still waiting in the queue), so a group that just
-- arrived (or was idle) starts beside the head of the line, neither behind another group's
-- whole backlog nor ahead of it with turns banked while it was idle.
-- Ungrouped messages keep turn 0: they are not in the rotation and, within their
-- priority, run first and FIFO as before.
ALTER TABLE {schema}.messages ADD COLUMN IF NOT EXISTS group_key text;
ALTER TABLE {schema}.messages ADD COLUMN IF NOT EXISTS turn bigint NOT NULL DEFAULT 0;
-- claim: ready messages by priority, then turn, then FIFO (replaces the (priority, id) index).
CREATE INDEX messages_ready_turn_idx ON {schema}.messages (queue, priority, turn, id)
    WHERE state = 'ready';
DROP INDEX IF EXISTS {schema}.messages_ready_idx;
-- publish: the oldest waiting grouped turn of a queue (one index probe).
CREATE INDEX messages_group_turn_idx ON {schema}.messages (queue, turn)
    WHERE state = 'ready' AND group_key IS NOT NULL;
-- The last turn handed to each group of each queue. UNLOGGED: taking turns then costs no WAL
-- flush (a grouped publish ran at 0.5x an ungrouped one with a logged table). After a crash
-- (or on a promoted standby) it starts empty, which is harmless: every group then takes its
-- next turn from the oldest one still waiting, as a newly arrived group does.
CREATE UNLOGGED TABLE {schema}.groups (
    queue     text   NOT NULL,
    group_key text   NOT NULL,
    last_turn bigint NOT NULL,
    PRIMARY KEY (queue, group_key)
);

-- version: 5
-- Workers: each consuming process registers itself here and heartbeats (QueueAdapter,
-- _workers.py), so operators can see who is online and what each runs; a graceful stop
-- deletes its row, and retention deletes rows whose heartbeat went stale (a killed process).
-- `running` holds the job ids of the attempts running at the last heartbeat.
CREATE TABLE {schema}.workers (
    id           uuid        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    version      text        NOT NULL,
    queues       text[]      NOT NULL,
    concurrency  integer     NOT NULL,
    running      uuid[]      NOT NULL DEFAULT '{{}}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
-- Pickup latency: messages picked up per queue and minute, with the sum and the largest of
-- their waits (claim time minus when each became runnable), counted by the claim itself, so
-- the average and the worst wait of a minute are read from here without scanning messages.
ALTER TABLE {schema}.stats ADD COLUMN picked_up integer NOT NULL DEFAULT 0,
                           ADD COLUMN pickup_ms_sum float8 NOT NULL DEFAULT 0,
                           ADD COLUMN pickup_ms_max float8 NOT NULL DEFAULT 0;
