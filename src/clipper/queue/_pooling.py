"""Running behind a transaction-pooling PgBouncer (`QueueConfig(pooler="transaction")`).

Such a pooler hands each transaction to whichever server connection is free, so nothing may
outlive a transaction on the server side. What that means here, one feature at a time:

- Prepared statements. psycopg prepares a statement once it ran `prepare_threshold` (5) times
  on one connection. Through the pooler the next run may reach a server connection that lacks
  it ("prepared statement "_pg3_0" does not exist"), or one where another client prepared its
  own "_pg3_0" ("already exists"). PgBouncer 1.18 cannot track them (1.21 can, with
  `max_prepared_statements`), so every engine sets `prepare_threshold=None`: each statement is
  parsed and planned every time (the unnamed statement of the extended protocol).
- Startup options. PgBouncer refuses an `options` startup parameter, and with
  `ignore_startup_parameters = options` it accepts and drops it, which would silently lose the
  server-side timeouts sent there (_deadlines.py). Its per-database `connect_query` could set
  them on each server connection, but an error in it is "logged but ignored", and a
  `DISCARD ALL` (its `server_reset_query`) undoes them. So they are set where no pooler
  setting can lose them: as the role's defaults in the database (`ALTER ROLE CURRENT_USER IN
  DATABASE … SET`), which PostgreSQL applies to every new session of that role there, pooled or
  not, and to which `RESET ALL` returns. `ensure_role_timeouts` does it on every start, through
  the pooler (so on the role the pooler really logs in as), and writes only when they differ.
  A session keeps the defaults it started with, so server connections the pooler opened before
  (for the migrations, say) would run without them for up to its `server_lifetime`. So right
  after a change, every session of the role in the database that started before it is ended
  as soon as it is idle (PgBouncer drops such a server connection and opens a fresh one when
  a client needs it), the one doing this included, until none is left or a deadline passes
  (then a warning counts the rest). Patching them with SET instead would not last: a
  `RESET ALL` or `DISCARD ALL` returns a session to the defaults it started with. No startup
  option is sent at all: a pooler that refuses `options` then accepts the connection, and one
  configured without pooler mode fails loudly instead of dropping them.
- LISTEN. A LISTEN stays on the server connection that ran it; its notifications reach
  whichever client holds that connection later, or nobody. The listener connects to
  `listen_url` (PostgreSQL itself) or does not run at all: poll-only. NOTIFY works through the
  pooler: PostgreSQL sends it when the transaction that issued it commits.
- Session state. The engine uses none: no SET, no temporary tables, no cursor held past its
  transaction, and its advisory locks are transaction-level (`pg_advisory_xact_lock`),
  released at commit. (tests/test_pooler_settings.py checks all of Clipper for them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from ._deadlines import ConnectionTimeouts

logger = logging.getLogger("clipper.queue")

Pooler = Literal["transaction"]
POOLERS = frozenset({"transaction"})

_LOCK_KEY = zlib.crc32(b"clipper_queue.role_timeouts")
_TRIES = 3

# The role's own defaults in this database, and the values this session runs with (not theirs
# when it started before they were set), both as `name=milliseconds` (pg_settings.setting is
# in the parameter's unit, ms for all three).
_READ = """
SELECT current_user::text, current_database()::text,
       coalesce((SELECT setconfig FROM pg_db_role_setting
                 WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                   AND setdatabase = (SELECT oid FROM pg_database
                                      WHERE datname = current_database())), '{}'),
       array(SELECT name || '=' || setting FROM pg_settings WHERE name = ANY(%(names)s))
"""

# One round after a change: whether this session predates it, and the other sessions of this
# role in this database that do, with those of them just ended (the idle ones: an idle pooled
# server connection carries no client's transaction; a busy one is ended in a later round,
# once its transaction is over).
_STALE_ROUND = """
SELECT pg_backend_pid(),
       (SELECT backend_start < %(changed_at)s FROM pg_stat_activity
        WHERE pid = pg_backend_pid()),
       coalesce(array_agg(pid), '{}'),
       coalesce(array_agg(pid) FILTER (WHERE state = 'idle' AND pg_terminate_backend(pid)), '{}')
FROM pg_stat_activity
WHERE usename = current_user AND datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend' AND backend_start < %(changed_at)s
"""


def connection_kwargs(
    timeouts: ConnectionTimeouts, pooler: Pooler | None = None, *, options: str = ""
) -> dict[str, Any]:
    """psycopg connection parameters with the deadlines of `timeouts`. Directly: the
    server-side timeouts travel as startup options (after `options`). Behind a transaction
    pooler: no startup options (the timeouts are the role's, see `ensure_role_timeouts`) and
    no prepared statements."""
    kwargs = timeouts.libpq_kwargs()
    if pooler == "transaction":
        return {**kwargs, "prepare_threshold": None}
    return {**kwargs, "options": f"{options} {timeouts.server_options()}".strip()}


@dataclass(frozen=True, slots=True)
class RoleTimeouts:
    """What `ensure_role_timeouts` found and did."""

    role: str
    database: str
    # The role's defaults in the database differed, and were set.
    changed: bool
    # The session it first ran on lacked them: a server connection opened before they were
    # set (by whichever process set them), so the pooler may hold more such connections.
    session_was_stale: bool
    # After a change: the sessions that had started before it and were ended, and those left
    # at the deadline (busy throughout).
    stale_ended: int = 0
    stale_left: int = 0


async def ensure_role_timeouts(
    conninfo: str,
    timeouts: ConnectionTimeouts,
    *,
    stale_deadline_seconds: float = 5.0,
    **connect_kwargs: Any,
) -> RoleTimeouts:
    """Make `timeouts`' server-side values the defaults of the current role in the current
    database, unless they already are; after a change, end the sessions that started before
    it (see the module's docstring) for up to `stale_deadline_seconds`. Opens connections of
    its own to `conninfo` (one of them ends itself), with `connect_kwargs`.

    Tried again when its connection is lost: another process starting at the same time may
    have just ended the session it ran on (every step can be repeated)."""
    for attempt in range(1, _TRIES + 1):
        try:
            return await _ensure_once(conninfo, timeouts, stale_deadline_seconds, connect_kwargs)
        except psycopg.OperationalError:
            if attempt == _TRIES:
                raise
    raise AssertionError("unreachable")


async def _ensure_once(
    conninfo: str,
    timeouts: ConnectionTimeouts,
    stale_deadline_seconds: float,
    connect_kwargs: dict[str, Any],
) -> RoleTimeouts:
    wanted = timeouts.server_settings()
    expected = {f"{name}={ms}" for name, ms in wanted.items()}
    conn = await _connect(conninfo, connect_kwargs)
    async with conn:
        async with conn.transaction():
            # One writer at a time: 30 workers starting together would otherwise race on the
            # same pg_db_role_setting row ("tuple concurrently updated").
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            cursor = await conn.execute(_READ, {"names": list(wanted)})
            row = await cursor.fetchone()
            assert row is not None
            role, database, defaults, session = row
            changed = {e for e in defaults if e.split("=", 1)[0] in wanted} != expected
            for name, ms in wanted.items() if changed else ():
                await conn.execute(
                    sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                        sql.Identifier(database), sql.Identifier(name), sql.Literal(ms)
                    )
                )
        session_was_stale = set(session) != expected
        # After the commit: any session that starts from now on reads the new defaults.
        row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
        assert row is not None
        changed_at = row[0]
    ended = left = 0
    if changed:
        ended, left = await _end_stale_sessions(
            conninfo, connect_kwargs, changed_at, stale_deadline_seconds
        )
    result = RoleTimeouts(role, database, changed, session_was_stale, ended, left)
    _log(result, wanted)
    return result


async def _connect(conninfo: str, kwargs: dict[str, Any]) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        conninfo, **{**kwargs, "autocommit": True, "prepare_threshold": None}
    )


async def _end_stale_sessions(
    conninfo: str, kwargs: dict[str, Any], changed_at: Any, deadline_seconds: float
) -> tuple[int, int]:
    """Rounds of _STALE_ROUND until no session from before the change is left, or the
    deadline: (sessions ended, sessions left). A round that runs on such a session ends it
    too, last, and the next round connects again (through the pooler: to a fresh server
    connection, or another old one)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_seconds
    ended: set[int] = set()
    left: set[int] = set()
    conn: psycopg.AsyncConnection[Any] | None = None
    try:
        while True:
            conn = conn or await _connect(conninfo, kwargs)
            cursor = await conn.execute(_STALE_ROUND, {"changed_at": changed_at})
            row = await cursor.fetchone()
            assert row is not None
            myself, myself_stale, stale, just_ended = row
            ended.update(just_ended)
            left = set(stale) - ended
            if myself_stale:
                ended.add(myself)  # (conn.info.backend_pid is the pooler's own, made-up one)
                with contextlib.suppress(psycopg.OperationalError):  # it ends: AdminShutdown
                    await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                await conn.close()
                conn = None
            elif not left:
                return len(ended), 0
            if loop.time() >= give_up:
                return len(ended), len(left)
            if left:
                await asyncio.sleep(0.05)  # their transactions are short: look again
    finally:
        if conn is not None:
            await conn.close()


def _log(result: RoleTimeouts, wanted: dict[str, int]) -> None:
    values = ", ".join(f"{name}={ms}ms" for name, ms in wanted.items())
    if result.changed:
        logger.warning(
            "set %s as the defaults of role %s in database %s (a transaction pooler passes no "
            "startup options); ended %d session(s) that had started before",
            values,
            result.role,
            result.database,
            result.stale_ended,
        )
        if result.stale_left:
            logger.warning(
                "%d session(s) of role %s that started before the new defaults stayed busy and "
                "keep their old values until they end (RECONNECT on the pooler's admin console "
                "replaces its server connections)",
                result.stale_left,
                result.role,
            )
    elif result.session_was_stale:
        logger.warning(
            "a pooled server connection ran without %s (opened before they became the role's "
            "defaults, and still open): RECONNECT on the pooler's admin console replaces such "
            "connections",
            values,
        )
