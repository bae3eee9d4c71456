-- Every runtime query of the PostgreSQL queue engine. {schema} is replaced by the configured
-- schema as a quoted identifier when the file is loaded; values are always bind parameters.
-- States: ready -> active -> completed | failed | cancelled; a failed attempt goes
-- active -> ready. Times come from the database clock (now()), never the worker's.
-- Statements that finish work also count it in {schema}.stats (queue, minute, a shard of
-- mod(pg_backend_pid(), 4) so concurrent acknowledgements rarely wait on one row).

-- name: take_turns
-- Hand groups their next turns for messages about to be published (schema version 4): `turns`
-- for each group, from max(its last turn + 1, the oldest turn still waiting in the queue).
-- Returns each group's new last turn; its messages take the `turns` numbers ending there.
-- Run on the engine's own connection, outside the publisher's transaction, so that
-- publishers of one group do not wait on each other's transactions; a turn taken for a
-- message that is then not inserted (a duplicate, a rollback) is a harmless gap.
-- Groups are locked in key order, so concurrent batches never deadlock.
WITH clock AS (
    SELECT coalesce(min(turn), 1) AS oldest FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'ready' AND group_key IS NOT NULL
)
INSERT INTO {schema}.groups AS g (queue, group_key, last_turn)
SELECT %(queue)s, wanted.group_key, clock.oldest + wanted.turns - 1
FROM unnest(%(groups)s::text[], %(turns)s::int[]) AS wanted(group_key, turns), clock
ORDER BY wanted.group_key
ON CONFLICT (queue, group_key)
DO UPDATE SET last_turn = greatest(EXCLUDED.last_turn,
                                   g.last_turn + EXCLUDED.last_turn - (SELECT oldest FROM clock) + 1)
RETURNING group_key, last_turn;

-- name: publish
-- Enqueue one message unless the queue already holds its job id; notify on commit. The
-- NOTIFY rides on RETURNING (no row, no wake-up), which measured cheaper in a bare loop than
-- selecting it from a data-modifying CTE.
INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts, run_after,
                               group_key, turn)
VALUES (%(queue)s, %(job_id)s, %(priority)s, %(payload)s, %(max_attempts)s,
        now() + %(delay)s * interval '1 second', %(group)s, %(turn)s)
ON CONFLICT (queue, job_id) DO NOTHING
RETURNING pg_notify(%(channel)s, queue);

-- name: publish_many
-- Enqueue a batch in one statement; returns the job ids that were new (the others were
-- already queued, or repeated within the batch). One wake-up per batch: NOTIFY folds
-- identical notifications of a transaction into one.
INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts, run_after,
                               group_key, turn)
SELECT %(queue)s, batch.job_id, batch.priority, batch.payload, %(max_attempts)s,
       now() + %(delay)s * interval '1 second', batch.group_key, batch.turn
FROM unnest(%(job_ids)s::uuid[], %(priorities)s::smallint[], %(payloads)s::jsonb[],
            %(groups)s::text[], %(turns)s::bigint[])
     AS batch(job_id, priority, payload, group_key, turn)
ON CONFLICT (queue, job_id) DO NOTHING
RETURNING job_id, pg_notify(%(channel)s, queue);

-- name: claim
-- Take up to `limit` runnable messages (ready and due, or active with an expired lease and
-- attempts left, not asked to cancel), best priority first, then by turn (groups take turns;
-- ungrouped messages have turn 0), FIFO within those; count the attempt and lease them.
-- Nothing while the queue is paused. With a `group_cap`, no group gets more than that many
-- active messages: full groups are skipped and the others take only their free places. The
-- active counts are read in this statement's snapshot, so capped claims of a queue run one
-- at a time under an advisory lock taken just before (PostgresStore.claim).
-- Each candidate carries `ready_at`, when it became runnable (its run_after, or for an
-- expired lease the lease's end): the pickup wait is now() minus that, returned to the
-- consumer and counted in the stats (picked up, sum and max of the waits) by this same
-- statement, as the settles count theirs.
WITH open AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM {schema}.queues WHERE queue = %(queue)s AND paused
    ) AS claimable
), busy AS (
    SELECT group_key, count(*) AS active FROM {schema}.messages
    WHERE %(group_cap)s::int IS NOT NULL
      AND queue = %(queue)s AND state = 'active' AND group_key IS NOT NULL
    GROUP BY group_key
), ready AS (
    SELECT id, priority, turn, group_key, run_after AS ready_at FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'ready' AND run_after <= now()
      AND (SELECT claimable FROM open)
      AND (group_key IS NULL OR %(group_cap)s::int IS NULL OR group_key NOT IN (
          SELECT group_key FROM busy WHERE active >= %(group_cap)s))
    ORDER BY priority, turn, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), admitted AS (
    -- Without a cap: every ready row. The branches' parameter tests are decided before
    -- either runs, so an uncapped claim never ranks anything (0.95x drain otherwise).
    SELECT id, priority, turn, ready_at FROM ready WHERE %(group_cap)s::int IS NULL
    UNION ALL
    SELECT id, priority, turn, ready_at FROM (
        SELECT ready.*, coalesce(busy.active, 0) AS active,
               row_number() OVER (PARTITION BY ready.group_key
                                  ORDER BY ready.priority, ready.turn, ready.id) AS nth
        FROM ready LEFT JOIN busy USING (group_key)
        WHERE %(group_cap)s::int IS NOT NULL
    ) AS ranked
    WHERE group_key IS NULL OR nth <= %(group_cap)s - active
), expired AS (
    SELECT id, priority, turn, lease_until AS ready_at FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'active' AND lease_until <= now()
      AND attempts < max_attempts AND cancel_requested_at IS NULL
      AND (SELECT claimable FROM open)
    ORDER BY lease_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), chosen AS (
    SELECT id, ready_at FROM (SELECT * FROM admitted UNION ALL SELECT * FROM expired)
        AS candidates
    ORDER BY priority, turn, id
    LIMIT %(limit)s
), claimed AS (
    UPDATE {schema}.messages AS m
    SET state = 'active',
        attempts = m.attempts + 1,
        lease_token = gen_random_uuid(),
        lease_until = now() + %(visibility)s * interval '1 second',
        claimed_at = now()
    FROM chosen
    WHERE m.id = chosen.id
    RETURNING m.id, m.lease_token, m.job_id, m.priority, m.payload, m.attempts,
              m.max_attempts, m.created_at,
              greatest(0, extract(epoch FROM now() - chosen.ready_at))::float8 AS pickup_delay,
              m.group_key
), counted AS (
    -- HAVING: an empty claim (an idle poll) writes nothing.
    INSERT INTO {schema}.stats (queue, minute, shard, picked_up, pickup_ms_sum, pickup_ms_max)
    SELECT %(queue)s, date_trunc('minute', now()), mod(pg_backend_pid(), 4), count(*),
           sum(pickup_delay) * 1000, max(pickup_delay) * 1000
    FROM claimed
    HAVING count(*) > 0
    ON CONFLICT (queue, minute, shard)
    DO UPDATE SET picked_up = stats.picked_up + EXCLUDED.picked_up,
                  pickup_ms_sum = stats.pickup_ms_sum + EXCLUDED.pickup_ms_sum,
                  pickup_ms_max = greatest(stats.pickup_ms_max, EXCLUDED.pickup_ms_max)
)
SELECT * FROM claimed;

-- name: lock_group_claims
-- Capped claims of one queue take turns (held until the claim's transaction ends).
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: claim_expired_final
-- Take messages whose lease expired on their last attempt, or while asked to cancel, so they
-- can be dead-lettered (or cancelled) through the normal fenced path (a new token makes the
-- stale worker's settle a no-op).
WITH expired AS (
    SELECT id FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'active' AND lease_until <= now()
      AND (attempts >= max_attempts OR cancel_requested_at IS NOT NULL)
    ORDER BY lease_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.messages AS m
SET lease_token = gen_random_uuid(),
    lease_until = now() + %(visibility)s * interval '1 second'
FROM expired
WHERE m.id = expired.id
RETURNING m.id, m.lease_token, m.cancel_requested_at IS NOT NULL AS cancelling;

-- name: complete
-- Acknowledge a batch of attempts; only rows still held by the same lease token change. A
-- grouped message's place in its group is free again: wake the queue's consumers, whose
-- capped claims may have left that group's messages behind (one NOTIFY per transaction and
-- queue, as PostgreSQL folds identical ones; none for ungrouped messages).
WITH done AS (
    UPDATE {schema}.messages AS m
    SET state = 'completed', finished_at = now(), lease_token = NULL, lease_until = NULL
    FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS acked(id, token)
    WHERE m.id = acked.id AND m.lease_token = acked.token AND m.state = 'active'
    RETURNING m.id, m.queue, m.group_key
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, completed)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4), count(*)
    FROM done GROUP BY queue
    ON CONFLICT (queue, minute, shard)
    DO UPDATE SET completed = stats.completed + EXCLUDED.completed
)
SELECT id, CASE WHEN group_key IS NOT NULL THEN pg_notify(%(channel)s, queue) END FROM done;

-- name: extend
-- Heartbeat: push the leases of a batch of attempts forward; returns the ones still held, and
-- whether each was asked to cancel (the fallback when the cancel NOTIFY was missed).
UPDATE {schema}.messages AS m
SET lease_until = now() + %(seconds)s * interval '1 second'
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS held(id, token)
WHERE m.id = held.id AND m.lease_token = held.token AND m.state = 'active'
RETURNING m.id, m.cancel_requested_at IS NOT NULL AS cancelling;

-- name: release
-- Give back attempts that shutdown (or a systemic failure) stopped: runnable at once, the
-- attempt not counted; one asked to cancel ends cancelled instead.
WITH released AS (
    UPDATE {schema}.messages AS m
    SET state = CASE WHEN m.cancel_requested_at IS NULL THEN 'ready' ELSE 'cancelled' END,
        attempts = m.attempts - 1, run_after = now(),
        finished_at = CASE WHEN m.cancel_requested_at IS NULL THEN NULL ELSE now() END,
        lease_token = NULL, lease_until = NULL
    FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS held(id, token)
    WHERE m.id = held.id AND m.lease_token = held.token AND m.state = 'active'
    RETURNING m.id, m.queue, m.state
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, cancelled)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4), count(*)
    FROM released WHERE state = 'cancelled' GROUP BY queue
    ON CONFLICT (queue, minute, shard)
    DO UPDATE SET cancelled = stats.cancelled + EXCLUDED.cancelled
)
SELECT id, pg_notify(%(channel)s, queue) FROM released;

-- name: retry
-- A failed attempt with attempts left: back off, keep the error, wake consumers for it. One
-- asked to cancel meanwhile ends cancelled instead (returned with state 'cancelled').
WITH retried AS (
    UPDATE {schema}.messages
    SET state = CASE WHEN cancel_requested_at IS NULL THEN 'ready' ELSE 'cancelled' END,
        finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE now() END,
        run_after = now() + %(delay)s * interval '1 second',
        lease_token = NULL, lease_until = NULL, last_error = %(error)s
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'active'
    RETURNING queue, job_id, attempts, run_after, state
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, retried, cancelled)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4),
           (state = 'ready')::int, (state = 'cancelled')::int
    FROM retried
    ON CONFLICT (queue, minute, shard)
    DO UPDATE SET retried = stats.retried + EXCLUDED.retried,
                  cancelled = stats.cancelled + EXCLUDED.cancelled
)
SELECT job_id, attempts, run_after, state, pg_notify(%(channel)s, queue) FROM retried;

-- name: dead_letter
-- The last attempt failed: end the message and copy it, with its error, into the
-- dead-letter queue (when it has one), in one statement.
WITH dead AS (
    UPDATE {schema}.messages
    SET state = 'failed', finished_at = now(), lease_token = NULL, lease_until = NULL,
        last_error = %(error)s
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'active'
    RETURNING queue, job_id, priority, payload, attempts, created_at, finished_at, group_key
), letter AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts)
    SELECT %(dead_letter_queue)s, job_id, priority,
           jsonb_build_object(
               'queue', queue, 'payload', payload, 'attempts', attempts, 'group', group_key,
               'error', %(error)s::jsonb,
               'enqueued_at', to_char(created_at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
               'failed_at', to_char(finished_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
           %(dead_letter_max_attempts)s
    FROM dead
    WHERE %(dead_letter_queue)s::text IS NOT NULL
    ON CONFLICT (queue, job_id) DO UPDATE
    SET state = 'ready', payload = EXCLUDED.payload, attempts = 0, run_after = now(),
        finished_at = NULL, last_error = NULL, lease_token = NULL, lease_until = NULL,
        cancel_requested_at = NULL
    RETURNING queue
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, failed, dead_lettered)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4), 1,
           (%(dead_letter_queue)s::text IS NOT NULL)::int
    FROM dead
    ON CONFLICT (queue, minute, shard)
    DO UPDATE SET failed = stats.failed + 1,
                  dead_lettered = stats.dead_lettered + EXCLUDED.dead_lettered
)
SELECT dead.queue, dead.job_id, dead.priority, dead.payload, dead.attempts, dead.created_at,
       dead.finished_at, dead.group_key,
       (SELECT pg_notify(%(channel)s, letter.queue) FROM letter) AS notified,
       -- A place in the group is free again (see complete).
       CASE WHEN dead.group_key IS NOT NULL THEN pg_notify(%(channel)s, dead.queue) END
FROM dead;

-- name: cancel_attempt
-- End an attempt that stopped because it was asked to cancel: not retried, not
-- dead-lettered; fenced like every settle.
WITH ended AS (
    UPDATE {schema}.messages
    SET state = 'cancelled', finished_at = now(), lease_token = NULL, lease_until = NULL
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'active'
    RETURNING queue
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, cancelled)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4), 1 FROM ended
    ON CONFLICT (queue, minute, shard) DO UPDATE SET cancelled = stats.cancelled + 1
)
SELECT queue FROM ended;

-- name: cancel
-- Cancel one message by job id: a ready (or scheduled) one ends at once; an active one is
-- asked to stop, and its consumer is told (NOTIFY on the cancel channel, payload the message
-- id; its heartbeat is the fallback). Returns the state it was in; no row: no such message.
WITH target AS (
    SELECT id, state FROM {schema}.messages
    WHERE queue = %(queue)s AND job_id = %(job_id)s
    FOR UPDATE
), ended AS (
    UPDATE {schema}.messages AS m
    SET state = 'cancelled', finished_at = now(), cancel_requested_at = now()
    FROM target
    WHERE m.id = target.id AND target.state = 'ready'
    RETURNING m.queue
), asked AS (
    UPDATE {schema}.messages AS m
    SET cancel_requested_at = coalesce(m.cancel_requested_at, now())
    FROM target
    WHERE m.id = target.id AND target.state = 'active'
    RETURNING m.id
), counted AS (
    INSERT INTO {schema}.stats (queue, minute, shard, cancelled)
    SELECT queue, date_trunc('minute', now()), mod(pg_backend_pid(), 4), 1 FROM ended
    ON CONFLICT (queue, minute, shard) DO UPDATE SET cancelled = stats.cancelled + 1
)
SELECT target.state,
       (SELECT pg_notify(%(cancel_channel)s, asked.id::text) FROM asked) AS notified
FROM target;

-- name: set_paused
-- Pause or resume a queue; resuming wakes its consumers at once.
WITH changed AS (
    INSERT INTO {schema}.queues (queue, paused) VALUES (%(queue)s, %(paused)s)
    ON CONFLICT (queue) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()
    RETURNING queue, paused
)
SELECT queue, (SELECT pg_notify(%(channel)s, changed.queue) WHERE NOT changed.paused)
FROM changed;

-- name: paused_queues
-- The queues paused now.
SELECT queue FROM {schema}.queues WHERE paused ORDER BY queue;

-- name: stats
-- Finished and picked-up work per queue and minute over the last `minutes` (the shards
-- summed), with the average and the largest pickup wait of the minute in milliseconds.
SELECT queue, minute, sum(completed)::bigint, sum(retried)::bigint, sum(failed)::bigint,
       sum(dead_lettered)::bigint, sum(cancelled)::bigint, sum(picked_up)::bigint,
       coalesce(sum(pickup_ms_sum) / nullif(sum(picked_up), 0), 0)::float8,
       max(pickup_ms_max)::float8
FROM {schema}.stats
WHERE minute >= date_trunc('minute', now()) - %(minutes)s * interval '1 minute'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
GROUP BY queue, minute
ORDER BY queue, minute;

-- name: prune_stats
-- Retention of the stats: minutes older than the horizon.
DELETE FROM {schema}.stats WHERE minute < now() - %(days)s * interval '1 day';

-- name: next_due
-- Seconds until the next message of a queue becomes runnable (a retry or an expiring lease);
-- none while the queue is paused (its consumers then wait for a wake-up or their poll).
SELECT extract(epoch FROM least(
    (SELECT min(run_after) FROM {schema}.messages
     WHERE queue = %(queue)s AND state = 'ready'),
    (SELECT min(lease_until) FROM {schema}.messages
     WHERE queue = %(queue)s AND state = 'active')
) - now())::float8 AS seconds
WHERE NOT EXISTS (SELECT 1 FROM {schema}.queues WHERE queue = %(queue)s AND paused);

-- name: depth
-- Unfinished messages per queue for metrics and `clipper queue stats`. Written as OR, not
-- IN: the planner combines the two partial indexes (ready, active) for an OR, while for an
-- IN list it scanned the whole table, finished history included (1 s at 5M rows).
SELECT queue,
       count(*) FILTER (WHERE state = 'ready' AND run_after <= now()) AS ready,
       count(*) FILTER (WHERE state = 'ready' AND run_after > now()) AS scheduled,
       count(*) FILTER (WHERE state = 'active') AS active,
       coalesce(extract(epoch FROM now() - min(run_after)
                FILTER (WHERE state = 'ready' AND run_after <= now())), 0)::float8 AS oldest_age
FROM {schema}.messages
WHERE state = 'ready' OR state = 'active'
GROUP BY queue
ORDER BY queue;

-- name: depth_by_priority
-- Unfinished messages per queue and priority (the console's overview), as `depth` reads them.
SELECT queue, priority,
       count(*) FILTER (WHERE state = 'ready' AND run_after <= now()) AS ready,
       count(*) FILTER (WHERE state = 'ready' AND run_after > now()) AS scheduled,
       count(*) FILTER (WHERE state = 'active') AS active
FROM {schema}.messages
WHERE state = 'ready' OR state = 'active'
GROUP BY queue, priority
ORDER BY queue, priority;

-- name: register_worker
-- A consuming process's registration and each heartbeat after it, in one statement: when
-- retention swept the row meanwhile (the database was away for longer than the stale
-- horizon), the next beat registers it again.
INSERT INTO {schema}.workers (id, host, pid, version, queues, concurrency, running)
VALUES (%(id)s, %(host)s, %(pid)s, %(version)s, %(queues)s, %(concurrency)s, %(running)s)
ON CONFLICT (id) DO UPDATE
SET queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency,
    running = EXCLUDED.running, heartbeat_at = now();

-- name: deregister_worker
-- A graceful stop: the process is gone at once, not when its heartbeat goes stale.
DELETE FROM {schema}.workers WHERE id = %(id)s;

-- name: workers
-- The workers online: those that heartbeat within the stale horizon, oldest first.
SELECT id, host, pid, version, queues, concurrency, running, started_at, heartbeat_at
FROM {schema}.workers
WHERE heartbeat_at > now() - %(stale_seconds)s * interval '1 second'
ORDER BY started_at, id;

-- name: prune_workers
-- Retention of the registry: processes that stopped heartbeating without deregistering.
DELETE FROM {schema}.workers
WHERE heartbeat_at <= now() - %(stale_seconds)s * interval '1 second';

-- name: delete_finished
-- Retention: one bounded batch of finished messages older than the horizon (run in the
-- transaction that holds the retention lock, so concurrent runs never overlap).
WITH doomed AS (
    SELECT id FROM {schema}.messages
    WHERE state IN ('completed', 'failed', 'cancelled')
      AND finished_at < now() - %(retention_hours)s * interval '1 hour'
    ORDER BY finished_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.messages AS m USING doomed WHERE m.id = doomed.id;

-- name: try_retention_lock
-- Whether this transaction may run retention now (held until it ends).
SELECT pg_try_advisory_xact_lock(%(lock_key)s) AS acquired;

-- name: list_dead_letters
-- Dead letters of a dead-letter queue, oldest first.
SELECT job_id, priority, payload, state, created_at
FROM {schema}.messages
WHERE queue = %(dead_letter_queue)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s;

-- name: redrive
-- Put dead letters back on their source queue with fresh attempts, and remove them from the
-- dead-letter queue. A source row already gone to retention is re-created from the letter,
-- in its group again (with turn 0: a redriven message does not queue behind the rotation).
WITH letters AS (
    SELECT id, job_id, priority, payload FROM {schema}.messages
    WHERE queue = %(dead_letter_queue)s AND state <> 'active'
      AND (%(job_ids)s::uuid[] IS NULL OR job_id = ANY(%(job_ids)s::uuid[]))
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), revived AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts, group_key)
    SELECT %(source_queue)s, job_id, priority, payload -> 'payload', %(max_attempts)s,
           payload ->> 'group'
    FROM letters
    ON CONFLICT (queue, job_id) DO UPDATE
    SET state = 'ready', attempts = 0, run_after = now(), finished_at = NULL,
        lease_token = NULL, lease_until = NULL, cancel_requested_at = NULL
    WHERE messages.state = 'failed'
    RETURNING job_id
), removed AS (
    DELETE FROM {schema}.messages AS m USING letters
    WHERE m.id = letters.id AND letters.job_id IN (SELECT job_id FROM revived)
)
SELECT job_id, pg_notify(%(channel)s, %(source_queue)s) FROM revived;

-- name: requeue
-- An operator's requeue of one finished message: run it again with fresh attempts (re-created
-- if retention already took it, with turn 0) and drop its dead letter. Not for a message
-- still unfinished.
WITH revived AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts, group_key)
    VALUES (%(queue)s, %(job_id)s, %(priority)s, %(payload)s, %(max_attempts)s, %(group)s)
    ON CONFLICT (queue, job_id) DO UPDATE
    SET state = 'ready', attempts = 0, run_after = now(), finished_at = NULL,
        lease_token = NULL, lease_until = NULL, priority = EXCLUDED.priority,
        payload = EXCLUDED.payload, group_key = EXCLUDED.group_key, cancel_requested_at = NULL
    WHERE messages.state IN ('completed', 'failed', 'cancelled')
    RETURNING queue
), removed AS (
    DELETE FROM {schema}.messages
    WHERE queue = %(dead_letter_queue)s AND job_id = %(job_id)s
      AND EXISTS (SELECT 1 FROM revived)
)
SELECT pg_notify(%(channel)s, queue) FROM revived;

-- name: ping
-- Health: the database answers and the queue table exists.
SELECT 1 FROM {schema}.messages LIMIT 0;
