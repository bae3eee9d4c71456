-- Every runtime query of the PostgreSQL queue engine. {schema} is replaced by the configured
-- schema as a quoted identifier when the file is loaded; values are always bind parameters.
-- States: ready -> active -> completed | failed; a failed attempt goes active -> ready.
-- Times come from the database clock (now()), never the worker's.

-- name: publish
-- Enqueue one message unless the queue already holds its job id; notify on commit.
WITH inserted AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts, run_after)
    VALUES (%(queue)s, %(job_id)s, %(priority)s, %(payload)s, %(max_attempts)s,
            now() + %(delay)s * interval '1 second')
    ON CONFLICT (queue, job_id) DO NOTHING
    RETURNING queue
)
SELECT pg_notify(%(channel)s, queue) FROM inserted;

-- name: claim
-- Take up to `limit` runnable messages (ready and due, or active with an expired lease and
-- attempts left), best priority first, FIFO within it; count the attempt and lease them.
WITH ready AS (
    SELECT id, priority FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'ready' AND run_after <= now()
    ORDER BY priority, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id, priority FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'active' AND lease_until <= now()
      AND attempts < max_attempts
    ORDER BY lease_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), chosen AS (
    SELECT id FROM (SELECT * FROM ready UNION ALL SELECT * FROM expired) AS candidates
    ORDER BY priority, id
    LIMIT %(limit)s
)
UPDATE {schema}.messages AS m
SET state = 'active',
    attempts = m.attempts + 1,
    lease_token = gen_random_uuid(),
    lease_until = now() + %(visibility)s * interval '1 second',
    claimed_at = now()
FROM chosen
WHERE m.id = chosen.id
RETURNING m.id, m.lease_token, m.job_id, m.priority, m.payload, m.attempts, m.max_attempts,
          m.created_at, extract(epoch FROM now() - m.run_after)::float8 AS pickup_delay;

-- name: claim_expired_final
-- Take messages whose lease expired on their last attempt, so they can be dead-lettered
-- through the normal fenced path (a new token makes the stale worker's settle a no-op).
WITH expired AS (
    SELECT id FROM {schema}.messages
    WHERE queue = %(queue)s AND state = 'active' AND lease_until <= now()
      AND attempts >= max_attempts
    ORDER BY lease_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.messages AS m
SET lease_token = gen_random_uuid(),
    lease_until = now() + %(visibility)s * interval '1 second'
FROM expired
WHERE m.id = expired.id
RETURNING m.id, m.lease_token;

-- name: complete
-- Acknowledge a batch of attempts; only rows still held by the same lease token change.
UPDATE {schema}.messages AS m
SET state = 'completed', finished_at = now(), lease_token = NULL, lease_until = NULL
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS done(id, token)
WHERE m.id = done.id AND m.lease_token = done.token AND m.state = 'active'
RETURNING m.id;

-- name: extend
-- Heartbeat: push the leases of a batch of attempts forward; returns the ones still held.
UPDATE {schema}.messages AS m
SET lease_until = now() + %(seconds)s * interval '1 second'
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS held(id, token)
WHERE m.id = held.id AND m.lease_token = held.token AND m.state = 'active'
RETURNING m.id;

-- name: release
-- Give back attempts that shutdown stopped: runnable at once, the attempt not counted.
WITH released AS (
    UPDATE {schema}.messages AS m
    SET state = 'ready', attempts = m.attempts - 1, run_after = now(),
        lease_token = NULL, lease_until = NULL
    FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS held(id, token)
    WHERE m.id = held.id AND m.lease_token = held.token AND m.state = 'active'
    RETURNING m.id, m.queue
)
SELECT id, pg_notify(%(channel)s, queue) FROM released;

-- name: retry
-- A failed attempt with attempts left: back off, keep the error, wake consumers for it.
WITH retried AS (
    UPDATE {schema}.messages
    SET state = 'ready', run_after = now() + %(delay)s * interval '1 second',
        lease_token = NULL, lease_until = NULL, last_error = %(error)s
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'active'
    RETURNING queue, job_id, attempts, run_after
)
SELECT job_id, attempts, run_after, pg_notify(%(channel)s, queue) FROM retried;

-- name: dead_letter
-- The last attempt failed: end the message and copy it, with its error, into the
-- dead-letter queue (when it has one), in one statement.
WITH dead AS (
    UPDATE {schema}.messages
    SET state = 'failed', finished_at = now(), lease_token = NULL, lease_until = NULL,
        last_error = %(error)s
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'active'
    RETURNING queue, job_id, priority, payload, attempts, created_at, finished_at
), letter AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts)
    SELECT %(dead_letter_queue)s, job_id, priority,
           jsonb_build_object(
               'queue', queue, 'payload', payload, 'attempts', attempts,
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
        finished_at = NULL, last_error = NULL, lease_token = NULL, lease_until = NULL
    RETURNING queue
)
SELECT dead.queue, dead.job_id, dead.priority, dead.payload, dead.attempts, dead.created_at,
       dead.finished_at, (SELECT pg_notify(%(channel)s, letter.queue) FROM letter) AS notified
FROM dead;

-- name: next_due
-- Seconds until the next message of a queue becomes runnable (a retry or an expiring lease).
SELECT extract(epoch FROM least(
    (SELECT min(run_after) FROM {schema}.messages
     WHERE queue = %(queue)s AND state = 'ready'),
    (SELECT min(lease_until) FROM {schema}.messages
     WHERE queue = %(queue)s AND state = 'active')
) - now())::float8 AS seconds;

-- name: depth
-- Unfinished messages per queue for metrics and `clipper queue stats` (partial indexes only).
SELECT queue,
       count(*) FILTER (WHERE state = 'ready' AND run_after <= now()) AS ready,
       count(*) FILTER (WHERE state = 'ready' AND run_after > now()) AS scheduled,
       count(*) FILTER (WHERE state = 'active') AS active,
       coalesce(extract(epoch FROM now() - min(run_after)
                FILTER (WHERE state = 'ready' AND run_after <= now())), 0)::float8 AS oldest_age
FROM {schema}.messages
WHERE state IN ('ready', 'active')
GROUP BY queue
ORDER BY queue;

-- name: delete_finished
-- Retention: one bounded batch of finished messages older than the horizon (run in the
-- transaction that holds the retention lock, so concurrent runs never overlap).
WITH doomed AS (
    SELECT id FROM {schema}.messages
    WHERE state IN ('completed', 'failed')
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
-- dead-letter queue. A source row already gone to retention is re-created from the letter.
WITH letters AS (
    SELECT id, job_id, priority, payload FROM {schema}.messages
    WHERE queue = %(dead_letter_queue)s AND state <> 'active'
      AND (%(job_ids)s::uuid[] IS NULL OR job_id = ANY(%(job_ids)s::uuid[]))
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), revived AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts)
    SELECT %(source_queue)s, job_id, priority, payload -> 'payload', %(max_attempts)s
    FROM letters
    ON CONFLICT (queue, job_id) DO UPDATE
    SET state = 'ready', attempts = 0, run_after = now(), finished_at = NULL,
        lease_token = NULL, lease_until = NULL
    WHERE messages.state = 'failed'
    RETURNING job_id
), removed AS (
    DELETE FROM {schema}.messages AS m USING letters
    WHERE m.id = letters.id AND letters.job_id IN (SELECT job_id FROM revived)
)
SELECT job_id, pg_notify(%(channel)s, %(source_queue)s) FROM revived;

-- name: requeue
-- An operator's requeue of one finished message: run it again with fresh attempts (re-created
-- if retention already took it) and drop its dead letter. Not for a message still unfinished.
WITH revived AS (
    INSERT INTO {schema}.messages (queue, job_id, priority, payload, max_attempts)
    VALUES (%(queue)s, %(job_id)s, %(priority)s, %(payload)s, %(max_attempts)s)
    ON CONFLICT (queue, job_id) DO UPDATE
    SET state = 'ready', attempts = 0, run_after = now(), finished_at = NULL,
        lease_token = NULL, lease_until = NULL, priority = EXCLUDED.priority,
        payload = EXCLUDED.payload
    WHERE messages.state IN ('completed', 'failed')
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
