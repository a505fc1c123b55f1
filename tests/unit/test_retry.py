"""The retry decision: exponential backoff with full jitter, bounded attempts, no I/O."""

from __future__ import annotations

import pytest
from shield_orchestrator.errors import (
    ChunkError,
    ChunkTimeout,
    MalformedMessage,
    PermanentChunkError,
)
from shield_orchestrator.services.retry import (
    DeadLetter,
    Retry,
    RetryPolicy,
    backoff_cap,
    decide,
    overload_delay,
)

POLICY = RetryPolicy(retry_attempts=3, base_delay_s=1.0, max_delay_s=5.0)


def test_retries_until_attempts_are_spent() -> None:
    decisions = [decide(n, ChunkError("x"), POLICY, rand=lambda: 1.0) for n in (1, 2, 3, 4)]
    assert decisions[:3] == [Retry(1.0), Retry(2.0), Retry(4.0)]
    assert decisions[3] == DeadLetter("failed after 4 attempts: ChunkError: x")


def test_backoff_is_capped_and_fully_jittered() -> None:
    assert [backoff_cap(n, POLICY) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert decide(2, ChunkTimeout(), POLICY, rand=lambda: 0.0) == Retry(0.0)
    assert decide(2, ChunkTimeout(), POLICY, rand=lambda: 0.5) == Retry(1.0)
    assert backoff_cap(10_000, POLICY) == 5.0  # no overflow on absurd attempt numbers


@pytest.mark.parametrize("error", [PermanentChunkError("bad"), MalformedMessage("no body")])
def test_non_retryable_errors_dead_letter_at_once(error: Exception) -> None:
    decision = decide(1, error, POLICY)
    assert isinstance(decision, DeadLetter)
    assert decision.reason.startswith("not retryable: ")


def test_unexpected_errors_are_retried() -> None:
    assert isinstance(decide(1, RuntimeError("bug"), POLICY), Retry)


def test_zero_retry_attempts_means_one_try() -> None:
    assert isinstance(decide(1, ChunkError(), RetryPolicy(retry_attempts=0)), DeadLetter)


def test_overload_delay_grows_and_stays_within_half_to_full_cap() -> None:
    assert overload_delay(1, POLICY, rand=lambda: 0.0) == 0.5
    assert overload_delay(3, POLICY, rand=lambda: 1.0) == 4.0
