"""The consumer: claim loop, concurrent handlers, batched acknowledgements, heartbeats,
retries, dead-lettering and graceful stop. It talks to storage only through PostgresStore."""

from __future__ import annotations

import asyncio
import enum
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

from ._backoff import retry_delay_seconds
from ._config import QueueConfig
from ._context import JobContext, _current_job_id
from ._errors import LeaseLostError, PermanentError, SystemicError
from ._hooks import SettleOptions
from ._message import Claim, ErrorInfo, ReceivedMessage, RetryNotice
from ._metrics import QueueMetrics
from ._store import PostgresStore

logger = logging.getLogger("clipper.queue")

Handler = Callable[[ReceivedMessage, JobContext], Awaitable[None]]
ErrorHook = Callable[[BaseException, str], None]

_TRACEBACK_LIMIT = 8000
_MESSAGE_LIMIT = 2000
_SWEEP_BATCH = 100

P = ParamSpec("P")
T = TypeVar("T")


class _Settle(enum.Enum):
    GAVE_UP = "gave up"  # the database stayed unreachable for a whole visibility window


def error_info(exc: BaseException) -> ErrorInfo:
    """The error as stored with the message: type, message and the tail of the traceback."""
    trace = "".join(traceback.format_exception(exc))[-_TRACEBACK_LIMIT:]
    code = getattr(exc, "code", None)
    return ErrorInfo(
        type(exc).__qualname__,
        str(exc)[:_MESSAGE_LIMIT],
        trace,
        code if isinstance(code, str) else None,
    )


@dataclass(eq=False, slots=True)
class _Attempt:
    message: ReceivedMessage
    # Loop time just before the last claim or extend that renewed the lease: the lease runs
    # at least a visibility window from then (on the database clock, which is later).
    renewed_at: float
    context: JobContext = field(init=False)
    task: asyncio.Task[None] | None = None
    # Set when shutdown took the message back: the handler's outcome no longer settles it.
    abandoned: bool = False
    # Set when the lease is gone (refused, or not renewed for a whole window): another
    # consumer may own the message, so this attempt stops and settles nothing.
    lost: bool = False
    # Set when cancel() asked this attempt to stop: it ends cancelled unless it completed.
    cancel_requested: bool = False

    @property
    def settles(self) -> bool:
        return not (self.abandoned or self.lost)


@dataclass(slots=True)
class ConsumerOptions:
    queue: str
    handler: Handler
    concurrency: int
    settle: SettleOptions
    on_error: ErrorHook | None = None
    # At most this many active messages per group, across every consumer of the database.
    group_concurrency: int | None = None
    # Called when an attempt starts or ends (the workers registry shows what runs now).
    on_running_changed: Callable[[], None] | None = None


class Consumer:
    """Runs one queue's handler with up to `concurrency` attempts at once. Made by `consume()`."""

    def __init__(
        self,
        store: PostgresStore,
        config: QueueConfig,
        metrics: QueueMetrics,
        options: ConsumerOptions,
    ) -> None:
        self.queue = options.queue
        self._store = store
        self._config = config
        self._options = options
        self._running: dict[int, _Attempt] = {}
        self._attempt_tasks: set[asyncio.Task[None]] = set()
        self._acks: list[Claim] = []
        self._ack_signal = asyncio.Event()
        # One event for everything the claim loop waits on: a wake-up NOTIFY, a freed slot, stop.
        self._signal = store.wakeups.subscribe(self.queue)
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._closed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._last_sweep = 0.0
        # Systemic failures (disk full, database away) pause claiming, backing off.
        self._systemic_failures = 0
        self._paused_until = 0.0
        queue = self.queue
        self._claimed = metrics.claimed.labels(queue)
        self._completed = metrics.completed.labels(queue)
        self._retried = metrics.retried.labels(queue)
        self._failed = metrics.failed.labels(queue)
        self._dead_lettered = metrics.dead_lettered.labels(queue)
        self._lease_lost = metrics.lease_lost.labels(queue)
        self._released = metrics.released.labels(queue)
        self._pickup = metrics.pickup_seconds.labels(queue)
        self._systemic = metrics.systemic_failures
        self._cancelled = metrics.cancelled.labels(queue)
        self._metrics = metrics

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def concurrency(self) -> int:
        return self._options.concurrency

    def _running_changed(self) -> None:
        if self._options.on_running_changed is not None:
            self._options.on_running_changed()

    def running_jobs(self) -> list[uuid.UUID]:
        """The job ids of the attempts this consumer runs now (for the workers registry)."""
        return [a.message.job_id for a in self._running.values() if a.settles]

    def start(self) -> None:
        self._store.wakeups.on_cancel(self._on_cancel_request)
        for loop in (self._claim_loop, self._ack_loop, self._heartbeat_loop):
            self._loops.append(asyncio.create_task(loop(), name=f"{self.queue}:{loop.__name__}"))

    # --- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        failures = 0
        timed_out = False
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            if (paused := self._paused_until - loop.time()) > 0:
                await self._wait_for_stop(paused)  # wake-ups do not end a systemic pause
                continue
            free = self._options.concurrency - len(self._running)
            if free <= 0:
                self._signal.clear()
                await self._pause(None)
                continue
            self._signal.clear()
            try:
                if (
                    timed_out
                    or loop.time() - self._last_sweep >= self._config.poll_interval_seconds
                ):
                    await self._sweep_expired()
                asked_at = loop.time()
                messages = await self._store.claim(
                    self.queue,
                    free,
                    self._config.visibility_seconds,
                    self._options.group_concurrency,
                )
                failures = 0
            except Exception as exc:
                failures += 1
                self._report(exc, "claim")
                await self._pause(self._reconnect_delay(failures))
                continue
            if self._stopping.is_set():
                await self._release([message.claim for message in messages])
                break
            for message in messages:
                self._start_attempt(message, asked_at)
            if len(messages) == free:
                timed_out = False
                continue  # a full batch: more are probably waiting
            timed_out = await self._pause(await self._idle_timeout())

    async def _idle_timeout(self) -> float:
        """Sleep until the next retry or lease expiry is due, or the poll interval at most."""
        timeout = self._config.poll_interval_seconds
        try:
            due = await self._store.next_due(self.queue)
        except Exception as exc:
            self._report(exc, "next_due")
            return timeout
        if due is None:
            return timeout
        if due == 0.0 and self._options.group_concurrency is not None:
            # Runnable messages the claim left behind: their groups are full. Waiting for the
            # next one to be due would spin; an acknowledgement that frees a place in a group
            # wakes the queue's consumers (NOTIFY), and the poll interval is the fallback.
            return timeout
        return min(timeout, due + 0.001)

    async def _wait_for_stop(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _pause(self, timeout: float | None) -> bool:
        """Wait for the signal (or stop); True when the timeout ran out instead."""
        try:
            async with asyncio.timeout(timeout):
                await self._signal.wait()
        except TimeoutError:
            return True
        return False

    def _reconnect_delay(self, failures: int) -> float:
        return float(min(self._config.reconnect_max_seconds, 0.05 * 2 ** min(failures, 10)))

    async def _sweep_expired(self) -> None:
        """Dead-letter messages whose lease ran out on their last attempt (their worker died)."""
        self._last_sweep = asyncio.get_running_loop().time()
        claims = await self._store.claim_expired_final(
            self.queue, _SWEEP_BATCH, self._config.visibility_seconds
        )
        error = ErrorInfo(
            "LeaseExpired",
            "the lease expired on the last attempt: the worker died or stopped heartbeating",
            code="LEASE_EXPIRED",
        )
        for claim, cancelling in claims:
            if cancelling:  # asked to cancel, and its worker is gone: nothing to stop
                await self._end_cancelled(claim)
                continue
            self._failed.inc()
            await self._dead_letter(claim, error)

    # --- running --------------------------------------------------------------------------

    def _start_attempt(self, message: ReceivedMessage, claimed_at: float) -> None:
        self._claimed.inc()
        self._pickup.observe(message.pickup_delay)
        attempt = _Attempt(message, claimed_at)
        attempt.context = JobContext(
            message,
            lambda seconds: self._extend_one(attempt, seconds),
            lambda conn: self._complete_in(attempt, conn),
            self._config.visibility_seconds,
        )
        self._running[message.claim.message_id] = attempt
        self._running_changed()
        attempt.task = asyncio.create_task(self._run(attempt))
        self._attempt_tasks.add(attempt.task)
        attempt.task.add_done_callback(self._attempt_tasks.discard)

    async def _run(self, attempt: _Attempt) -> None:
        message = attempt.message
        _current_job_id.set(message.job_id)
        started = asyncio.get_running_loop().time()
        failure: BaseException | None = None
        try:
            await self._options.handler(message, attempt.context)
        except (Exception, asyncio.CancelledError) as exc:
            failure = exc
        finally:
            del self._running[message.claim.message_id]
            self._running_changed()
            self._signal.set()
        elapsed = asyncio.get_running_loop().time() - started
        outcome = "completed" if failure is None else "failed"
        self._metrics.handler_seconds.labels(self.queue, outcome).observe(elapsed)
        if isinstance(failure, LeaseLostError) and attempt.settles:
            attempt.lost = True  # refused by extend_lease() or complete(): already counted
            logger.warning(
                "stale attempt: its lease was lost, its outcome is discarded",
                extra=self._log_extra(message),
            )
        if not attempt.settles:
            return  # released by shutdown, or owned by another consumer now
        if failure is None:  # done, even if a cancel came too late to stop it
            self._systemic_failures = 0
            if attempt.context.completed_in_transaction:
                self._completed.inc()
            else:
                self._acks.append(message.claim)
                self._ack_signal.set()
        elif attempt.cancel_requested:
            await self._end_cancelled(message.claim)
        elif isinstance(failure, SystemicError):
            await self._hold_back(message, failure)
        else:
            await self._settle_failure(message, failure)

    async def _hold_back(self, message: ReceivedMessage, failure: SystemicError) -> None:
        """Give the message back uncharged and pause claiming: the cause is not the message,
        so running it again now, here or elsewhere, would only fail the same way."""
        self._systemic_failures += 1
        pause = min(
            self._config.systemic_pause_max_seconds,
            0.5 * 2 ** min(self._systemic_failures - 1, 10),
        )
        self._paused_until = max(self._paused_until, asyncio.get_running_loop().time() + pause)
        self._systemic.labels(self.queue, failure.code).inc()
        logger.warning(
            "systemic failure %s: %s; message given back uncharged, claims paused for %.1fs",
            failure.code,
            failure,
            pause,
            extra=self._log_extra(message),
        )
        await self._release([message.claim])

    def _on_cancel_request(self, message_id: int) -> None:
        attempt = self._running.get(message_id)
        if attempt is not None and attempt.settles:
            self._request_cancel(attempt)

    def _request_cancel(self, attempt: _Attempt) -> None:
        if attempt.cancel_requested:
            return
        attempt.cancel_requested = True
        attempt.context.cancel("cancelled")
        if attempt.task is not None:
            attempt.task.cancel()
        logger.info(
            "cancel requested: stopping the attempt", extra=self._log_extra(attempt.message)
        )

    async def _end_cancelled(self, claim: Claim) -> None:
        ended = await self._persist("cancel", self._store.cancel_attempt, claim)
        if ended is True:
            self._cancelled.inc()
        elif ended is False:
            self._lease_lost.inc()

    def _log_extra(self, message: ReceivedMessage) -> dict[str, Any]:
        return {"job_id": str(message.job_id), "queue": self.queue, "attempt": message.attempt}

    async def _settle_failure(self, message: ReceivedMessage, failure: BaseException) -> None:
        self._failed.inc()
        error = error_info(failure)
        log = {
            "job_id": str(message.job_id),
            "queue": self.queue,
            "attempt": message.attempt,
            "max_attempts": message.max_attempts,
            "error": f"{error.type}: {error.message}",
        }
        if isinstance(failure, PermanentError) or message.attempt >= message.max_attempts:
            await self._dead_letter(message.claim, error)
            return
        delay = retry_delay_seconds(
            message.attempt,
            base_ms=self._config.backoff_base_ms,
            max_ms=self._config.backoff_max_ms,
            jitter=self._config.backoff_jitter,
        )
        held = await self._persist(
            "retry", self._store.retry, message.claim, delay, error, self._options.settle
        )
        if isinstance(held, RetryNotice):
            self._retried.inc()
            logger.warning("attempt failed; retrying in %.2fs", delay, extra=log)
        elif held == "cancelled":
            self._cancelled.inc()
            logger.info("attempt failed after a cancel request: cancelled", extra=log)
        elif held is None:
            self._lease_lost.inc()
            logger.warning("attempt failed after its lease was lost", extra=log)

    async def _dead_letter(self, claim: Claim, error: ErrorInfo) -> None:
        letter = await self._persist(
            "dead_letter",
            self._store.dead_letter,
            claim,
            error,
            self._options.settle,
        )
        if letter is _Settle.GAVE_UP:
            return
        if letter is None:
            self._lease_lost.inc()
            return
        self._dead_lettered.inc()
        # Info, not error: the dead-letter consumer reports each letter once, at error level.
        logger.info(
            "message dead-lettered after %d attempt(s): %s: %s",
            letter.attempts,
            error.type,
            error.message,
            extra={
                "job_id": str(letter.job_id),
                "queue": self.queue,
                "dead_letter_queue": self._options.settle.dead_letter_queue,
            },
        )

    async def _persist(
        self, operation: str, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | Literal[_Settle.GAVE_UP]:
        """Run a settle call until it succeeds; past one visibility window the lease is gone
        anyway and the message will be redelivered (or swept to the dead-letter queue)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.visibility_seconds
        failures = 0
        while True:
            try:
                return await call(*args, **kwargs)
            except Exception as exc:
                failures += 1
                self._report(exc, operation)
                if loop.time() >= deadline:
                    return _Settle.GAVE_UP
                await asyncio.sleep(self._reconnect_delay(failures))

    # --- acknowledgements and leases ---------------------------------------------------------

    async def _ack_loop(self) -> None:
        failures = 0
        while not (self._closed.is_set() and not self._acks):
            await self._ack_signal.wait()
            self._ack_signal.clear()
            if not self._acks:
                continue
            batch, self._acks = self._acks, []
            try:
                done = await self._store.complete(batch)
                failures = 0
            except Exception as exc:
                self._acks[:0] = batch
                failures += 1
                self._report(exc, "complete")
                if self._closed.is_set() and failures > 3:
                    return
                await asyncio.sleep(self._reconnect_delay(failures))
                self._ack_signal.set()
                continue
            self._completed.inc(len(done))
            if lost := len(batch) - len(done):
                self._lease_lost.inc(lost)
                logger.warning("%d acknowledgement(s) refused: lease lost", lost)

    async def _extend_one(self, attempt: _Attempt, seconds: float) -> bool:
        asked_at = asyncio.get_running_loop().time()
        held = await self._store.extend([attempt.message.claim], seconds)
        if attempt.message.claim.message_id not in held:
            self._lease_lost.inc()
            return False
        attempt.renewed_at = asked_at
        if held[attempt.message.claim.message_id]:
            self._request_cancel(attempt)
        return True

    async def _complete_in(self, attempt: _Attempt, conn: Any) -> bool:
        if not attempt.settles:
            return False  # presumed lost: even if the row still says ours, do not finish it
        if await self._store.complete_in(attempt.message.claim, conn):
            return True
        self._lease_lost.inc()
        return False

    async def _heartbeat_loop(self) -> None:
        """Renew every running lease each heartbeat. An attempt whose lease was refused, or
        could not be renewed for a whole visibility window (the database is unreachable or
        the connection hangs), is stopped: another consumer may be running it by now."""
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            try:
                async with asyncio.timeout(self._next_beat_in(loop.time())):
                    await self._closed.wait()
                return
            except TimeoutError:
                pass
            attempts = self._expire_unrenewed(loop.time())
            if not attempts:
                continue
            asked_at = loop.time()
            try:
                held = await self._store.extend(
                    [a.message.claim for a in attempts], self._config.visibility_seconds
                )
            except Exception as exc:
                self._report(exc, "heartbeat")
                continue
            for attempt in attempts:
                if self._running.get(attempt.message.claim.message_id) is not attempt:
                    continue  # finished meanwhile: its acknowledgement settles it
                if attempt.message.claim.message_id in held:
                    attempt.renewed_at = asked_at
                    if held[attempt.message.claim.message_id]:  # the cancel NOTIFY was missed
                        self._request_cancel(attempt)
                else:
                    self._lose(attempt, "the heartbeat was refused")

    def _next_beat_in(self, now: float) -> float:
        """The heartbeat period, or sooner when a lease runs out before the next beat."""
        delay = self._config.heartbeat_seconds
        for attempt in self._running.values():
            if attempt.settles:
                expiry = attempt.renewed_at + self._config.visibility_seconds
                delay = min(delay, expiry - now)
        return max(0.01, delay)

    def _expire_unrenewed(self, now: float) -> list[_Attempt]:
        """Stop attempts whose lease has run out unrenewed; return the ones still held."""
        held = []
        for attempt in list(self._running.values()):
            if not attempt.settles:
                continue
            if now - attempt.renewed_at >= self._config.visibility_seconds:
                self._lose(attempt, "not renewed for a whole visibility window")
            else:
                held.append(attempt)
        return held

    def _lose(self, attempt: _Attempt, why: str) -> None:
        attempt.lost = True
        self._lease_lost.inc()
        attempt.context.cancel("lease lost")
        if attempt.task is not None:
            attempt.task.cancel()
        logger.warning(
            "lease lost (%s): stopping the attempt", why, extra=self._log_extra(attempt.message)
        )

    # --- stopping -------------------------------------------------------------------------

    def hurry(self) -> None:
        """End a running stop's grace period now (a second Ctrl-C)."""
        self._hurry.set()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming, give back unstarted messages, let running handlers finish for up to
        `grace_seconds`, then cancel them and give their messages back without using up an
        attempt. Pending acknowledgements are flushed before it returns."""
        if self._stopping.is_set():
            if grace_seconds == 0:
                self.hurry()
            await self._closed.wait()
            return
        grace = self._config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        self._stopping.set()
        self._signal.set()
        await asyncio.gather(self._loops[0], return_exceptions=True)
        await self._grace_period(grace)
        overdue = [attempt for attempt in self._running.values() if attempt.settles]
        for attempt in overdue:
            attempt.abandoned = True
            attempt.context.cancel("shutdown")
            if attempt.task is not None:
                attempt.task.cancel()
        await self._release([attempt.message.claim for attempt in overdue])
        if self._attempt_tasks:
            # Settling failures finish; handlers that ignore cancellation are left behind.
            await asyncio.wait(set(self._attempt_tasks), timeout=1.0)
        self._closed.set()
        self._ack_signal.set()
        await asyncio.gather(*self._loops[1:], return_exceptions=True)
        self._store.wakeups.unsubscribe(self.queue, self._signal)
        self._store.wakeups.off_cancel(self._on_cancel_request)

    async def _grace_period(self, grace: float) -> None:
        if not self._attempt_tasks or grace <= 0 or self._hurry.is_set():
            return
        # asyncio.wait never cancels what it waits for: cancelling `finished` leaves handlers be.
        finished = asyncio.ensure_future(asyncio.wait(set(self._attempt_tasks)))
        hurried = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait({finished, hurried}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()
        hurried.cancel()

    async def _release(self, claims: list[Claim]) -> None:
        if not claims:
            return
        released = await self._persist("release", self._store.release, claims)
        if released is not _Settle.GAVE_UP:
            self._released.inc(len(released))

    def _report(self, exc: BaseException, operation: str) -> None:
        self._metrics.engine_errors.labels(self.queue, operation).inc()
        logger.error(
            "queue engine error during %s: %s: %s",
            operation,
            type(exc).__name__,
            exc,
            extra={"queue": self.queue, "operation": operation},
        )
        if self._options.on_error is not None:
            try:
                self._options.on_error(exc, operation)
            except Exception:
                logger.exception("the on_error hook raised")
