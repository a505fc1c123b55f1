"""A slot's handling of one entry: malformed outcomes, the engine's input, the retry loop
(no Redis: a fake sleep records delays). The envelope itself: tests/unit/test_messages.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shield_orchestrator.engines.base import ChunkResult
from shield_orchestrator.errors import ChunkError, EngineOverloaded, MalformedMessage
from shield_orchestrator.services.metrics import WorkerMetrics
from shield_orchestrator.services.retry import RetryPolicy
from shield_orchestrator.workers.handlers import malformed_outcome, run_with_retries
from shield_orchestrator.workers.lightrag_processor import chunk_input

JOB = "0b5e1d7a-3c2f-4f7e-9a51-2f1d6c3b9e40"
GOOD = {"v": "1", "kind": "ingest_chunk", "job_id": JOB, "chunk_id": "c000001", "body": "{}"}


def test_malformed_outcome_keeps_readable_ids_only() -> None:
    o = malformed_outcome("1-0", GOOD, MalformedMessage("x"))
    assert (o.job_id, o.chunk_id, o.outcome) == (JOB, "c000001", "failed")
    o = malformed_outcome("1-0", {**GOOD, "job_id": "nope"}, MalformedMessage("x"))
    assert o.job_id == ""
    assert o.error == "malformed: x"


def test_chunk_input_is_the_parsed_body_with_the_attempt() -> None:
    """The body's checks and defaults are the contract's (tests/unit/test_messages.py)."""
    body = {"text": "hello", "source_type": "md", "metadata": {"page": 2}}
    chunk = chunk_input(JOB, "c1", json.dumps(body), attempt=2)
    assert (chunk.job_id, chunk.chunk_id, chunk.text, chunk.attempt) == (JOB, "c1", "hello", 2)
    assert (chunk.source_uri, chunk.source_type, chunk.workspace, chunk.metadata) == (
        f"shield://{JOB}/c1",
        "md",
        "default",
        {"page": 2},
    )
    with pytest.raises(MalformedMessage, match=r"body\.text is missing or empty"):
        chunk_input(JOB, "c1", '{"text": "  "}')


class _Script:
    """attempt_fn that raises the scripted errors in order, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.attempts: list[int] = []

    async def __call__(self, attempt: int) -> ChunkResult:
        self.attempts.append(attempt)
        if self.errors:
            raise self.errors.pop(0)
        return ChunkResult()


async def _run(
    script: _Script, policy: RetryPolicy, budget_s: float = 60
) -> tuple[Any, list[float]]:
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    result = await run_with_retries(script, policy, budget_s, WorkerMetrics(), sleep=sleep)
    return result, delays


async def test_retries_with_growing_backoff_then_succeeds() -> None:
    script = _Script(ChunkError("a"), ChunkError("b"))
    (attempts, reason), delays = await _run(script, RetryPolicy(3, 1.0, 60.0))
    assert (attempts, reason) == (3, None)
    assert script.attempts == [1, 2, 3]
    assert len(delays) == 2
    assert 0 <= delays[0] <= 1.0
    assert 0 <= delays[1] <= 2.0


async def test_gives_up_after_retry_attempts() -> None:
    script = _Script(*[ChunkError(str(i)) for i in range(10)])
    (attempts, reason), _ = await _run(script, RetryPolicy(2, 0.0, 0.0))
    assert attempts == 3
    assert reason == "failed after 3 attempts: ChunkError: 2"


async def test_overload_backs_off_without_spending_attempts() -> None:
    script = _Script(EngineOverloaded(), EngineOverloaded(), ChunkError("x"))
    (attempts, reason), delays = await _run(script, RetryPolicy(1, 0.01, 0.01))
    assert (attempts, reason) == (2, None)
    assert script.attempts == [1, 1, 1, 2]
    assert len(delays) == 3


async def test_overload_beyond_the_budget_counts_as_a_failed_try() -> None:
    script = _Script(*[EngineOverloaded() for _ in range(10)])
    (attempts, reason), _ = await _run(script, RetryPolicy(0, 10.0, 10.0), budget_s=1.0)
    assert attempts == 1
    assert reason is not None
    assert "engine overloaded" in reason
