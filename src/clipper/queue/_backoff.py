"""Retry delays: capped exponential backoff with additive jitter (pure functions)."""

from __future__ import annotations

import random


def retry_delay_seconds(
    failed_attempt: int,
    *,
    base_ms: int,
    max_ms: int,
    jitter: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds a message waits after its attempt `failed_attempt` (1-based) failed.

    nominal = min(max_ms, base_ms * 2**(failed_attempt - 1)); the delay is drawn uniformly from
    [nominal, nominal * (1 + jitter)]. The jitter only ever adds, so a retry never runs before its
    nominal delay, and retries of messages that failed together spread out instead of stampeding.
    """
    if failed_attempt < 1:
        raise ValueError("failed_attempt starts at 1")
    exponent = min(failed_attempt - 1, 62)  # 2**62 ms already exceeds any sane cap
    nominal_ms = min(max_ms, base_ms * (2**exponent))
    spread = (rng or random).uniform(0.0, jitter) if jitter > 0 else 0.0
    return float(nominal_ms * (1.0 + spread) / 1000.0)
