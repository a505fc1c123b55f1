"""The retry decision: a pure function of (attempt, error, policy). No I/O, no clock.

    decide(attempt, error, policy) -> Retry(delay_s) | DeadLetter(reason)

``attempt`` is the number of the try that just failed (1 = the first try). A chunk gets
``1 + policy.retry_attempts`` tries; the delay before try n+1 is drawn with "full jitter"
from [0, min(cap, base * 2**(n-1))] (spreads retries of many chunks that failed together).
Non-retryable errors (:data:`NON_RETRYABLE`) are dead-lettered at once.
``EngineOverloaded`` is not decided here: the pool backs off without spending an attempt
(:func:`overload_delay`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from shield_orchestrator.errors import MalformedMessage, PermanentChunkError

# Errors that no retry can fix: dead-letter at once.
NON_RETRYABLE: tuple[type[BaseException], ...] = (PermanentChunkError, MalformedMessage)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_attempts: int = 3  # retries after the first try
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str


Decision = Retry | DeadLetter


def backoff_cap(attempt: int, policy: RetryPolicy) -> float:
    """Upper bound of the delay after failed try ``attempt`` (exponential, capped)."""
    exponent = min(max(attempt - 1, 0), 32)
    return float(min(policy.max_delay_s, policy.base_delay_s * (2**exponent)))


def describe(error: BaseException) -> str:
    """``Type: message`` of an error, for the dead-letter record (no traceback)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def decide(
    attempt: int,
    error: BaseException,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Retry (with a jittered delay) or dead-letter, after try number ``attempt`` failed."""
    if isinstance(error, NON_RETRYABLE):
        return DeadLetter(f"not retryable: {describe(error)}")
    if attempt >= 1 + policy.retry_attempts:
        return DeadLetter(f"failed after {attempt} attempts: {describe(error)}")
    return Retry(delay_s=rand() * backoff_cap(attempt, policy))


def overload_delay(
    overloads: int, policy: RetryPolicy, rand: Callable[[], float] = random.random
) -> float:
    """Back-off before calling an overloaded engine again (the n-th overload in a row)."""
    cap = backoff_cap(overloads, policy)
    return cap / 2 + rand() * cap / 2  # at least half the cap: do not hammer a busy engine
