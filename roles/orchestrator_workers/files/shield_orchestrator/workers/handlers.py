"""What a slot does with one stream entry: dispatch on ``kind``, retry.

The message contract (envelope, kinds, bodies) is services/messages.py; the pool parses the
envelope with it and the ``kind`` field picks a :class:`Handler` of :func:`make_handlers`::

    ingest_chunk     IngestChunkHandler     the chunk through engine.process
    delete_document  DeleteDocumentHandler  the documents out through engine.delete

A third kind adds a handler here (and its name in make_handlers), the pool does not change;
both handlers share the same retry loop, outcomes and dead letter. A handler returns an
:class:`Outcome` and never raises for a chunk's failure: the retry loop
(:func:`run_with_retries`) turns errors into a retry (exponential backoff + full jitter,
services/retry.py) or a FAILED outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from shield_orchestrator.engines.base import ChunkInput, EngineOverloaded
from shield_orchestrator.errors import ChunkError, MalformedMessage
from shield_orchestrator.services.job_tracker import FAILED, PROCESSED, Outcome
from shield_orchestrator.services.messages import (
    DELETE_DOCUMENT,
    INGEST_CHUNK,
    Envelope,
    readable_ids,
)
from shield_orchestrator.services.metrics import WorkerMetrics
from shield_orchestrator.services.retry import DeadLetter, RetryPolicy, decide, overload_delay
from shield_orchestrator.workers.lightrag_processor import (
    ChunkProcessor,
    chunk_input,
    delete_input,
)

log = logging.getLogger(__name__)


def outcome_of(envelope: Envelope, outcome: str, attempts: int, error: str = "") -> Outcome:
    """The outcome to record for a parsed entry (PROCESSED, or FAILED with the reason)."""
    e = envelope
    return Outcome(e.entry_id, e.job_id, e.chunk_id, outcome, e.kind, attempts, error)


def malformed_outcome(entry_id: str, fields: Mapping[str, str], error: Exception) -> Outcome:
    """A FAILED outcome for an entry that cannot be processed (dead-lettered at once).

    When the ids are readable the job counts the chunk as failed (so it still completes);
    otherwise the Lua only dead-letters and acknowledges the entry.
    """
    job_id, chunk_id = readable_ids(fields)
    return Outcome(
        entry_id=entry_id,
        job_id=job_id,
        chunk_id=chunk_id,
        outcome=FAILED,
        kind=(fields.get("kind", "") if fields else "")[:64],
        attempts=0,
        error=f"malformed: {error}",
    )


class Handler(Protocol):
    async def __call__(self, envelope: Envelope) -> Outcome: ...


async def run_with_retries(
    attempt_fn: Callable[[int], Awaitable[Any]],
    policy: RetryPolicy,
    overload_budget_s: float,
    metrics: WorkerMetrics,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[int, str | None]:
    """Call ``attempt_fn(attempt)`` until it succeeds or the policy gives up.

    Returns ``(attempts, None)`` on success, ``(attempts, reason)`` when the chunk failed for
    good. EngineOverloaded backs off without spending an attempt, for ``overload_budget_s``
    in total; after that it counts as a failed try. Cancellation propagates.
    """
    attempt, overloads = 1, 0
    overload_deadline = time.monotonic() + overload_budget_s
    while True:
        try:
            await attempt_fn(attempt)
            return attempt, None
        except EngineOverloaded as exc:
            overloads += 1
            delay = overload_delay(overloads, policy)
            if time.monotonic() + delay <= overload_deadline:
                metrics.overloaded.inc()
                await sleep(delay)
                continue
            error: Exception = ChunkError(f"engine overloaded for {overload_budget_s:g}s: {exc}")
        except Exception as exc:  # a task's error never kills the pool
            error = exc
        decision = decide(attempt, error, policy)
        if isinstance(decision, DeadLetter):
            return attempt, decision.reason
        metrics.retried.inc()
        log.info(
            "attempt %d failed (%s); retrying in %.2fs",
            attempt,
            type(error).__name__,
            decision.delay_s,
            extra={"action": "chunk_retry"},
        )
        await sleep(decision.delay_s)
        attempt, overloads = attempt + 1, 0
        overload_deadline = time.monotonic() + overload_budget_s


class _RetryingHandler:
    """Parse the body (a malformed one is dead-lettered at once), then retry the engine call."""

    def __init__(
        self,
        processor: ChunkProcessor,
        policy: RetryPolicy,
        metrics: WorkerMetrics,
        overload_budget_s: float,
    ) -> None:
        self.processor = processor
        self.policy = policy
        self.metrics = metrics
        self.overload_budget_s = overload_budget_s

    def attempt_fn(self, envelope: Envelope) -> Callable[[int], Awaitable[Any]]:
        """The engine call of attempt n; MalformedMessage when the body is not valid."""
        raise NotImplementedError

    async def __call__(self, envelope: Envelope) -> Outcome:
        try:
            attempt = self.attempt_fn(envelope)
        except MalformedMessage as exc:
            return malformed_outcome(envelope.entry_id, envelope.fields, exc)
        started = time.monotonic()
        attempts, reason = await run_with_retries(
            attempt, self.policy, self.overload_budget_s, self.metrics
        )
        self.metrics.duration.observe(time.monotonic() - started)
        return outcome_of(envelope, PROCESSED if reason is None else FAILED, attempts, reason or "")


class IngestChunkHandler(_RetryingHandler):
    """``ingest_chunk``: the chunk's body through the engine (workers/lightrag_processor)."""

    def attempt_fn(self, envelope: Envelope) -> Callable[[int], Awaitable[Any]]:
        chunk = chunk_input(envelope.job_id, envelope.chunk_id, envelope.body)

        def attempt(n: int) -> Awaitable[Any]:
            return self.processor.process(_with_attempt(chunk, n))

        return attempt


class DeleteDocumentHandler(_RetryingHandler):
    """``delete_document``: the named documents out of the engine's graph (engine.delete)."""

    def attempt_fn(self, envelope: Envelope) -> Callable[[int], Awaitable[Any]]:
        request = delete_input(envelope.job_id, envelope.chunk_id, envelope.body)

        def attempt(n: int) -> Awaitable[Any]:
            return self.processor.delete(replace(request, attempt=n))

        return attempt


def make_handlers(
    processor: ChunkProcessor,
    policy: RetryPolicy,
    metrics: WorkerMetrics,
    overload_budget_s: float,
) -> dict[str, Handler]:
    """The pool's handler of every kind of the message contract, by kind."""
    args = (processor, policy, metrics, overload_budget_s)
    return {INGEST_CHUNK: IngestChunkHandler(*args), DELETE_DOCUMENT: DeleteDocumentHandler(*args)}


def _with_attempt(chunk: ChunkInput, attempt: int) -> ChunkInput:
    return chunk if chunk.attempt == attempt else replace(chunk, attempt=attempt)
