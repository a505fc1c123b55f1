"""Admission: what a fetched (or reclaimed) batch of stream entries needs before the slots.

``Admission.admit(entries, redelivered) -> (ready, outcomes)``: the envelopes the slots run,
and the outcomes settled without running anything (the acker records them like the others):

    parse        the envelope (services/messages.py) for a kind the pool handles; a malformed
                 entry is dead-lettered, an entry deleted meanwhile (no fields) acknowledged
    poison       (redelivered batches) delivered more than retry_attempts + 1 times: dead letter
    unknown job  no job hash (never written, or expired): dead letter "malformed: unknown job"
    seen         (redelivered batches) the chunk is already counted: acknowledged

The checks after parsing cost one pipelined round trip per batch (two for a redelivered batch:
the delivery counts first); a job seen to exist is not checked again for KNOWN_JOB_S. When
Redis fails them the entries are run anyway: the progress Lua decides at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator import keys
from shield_orchestrator.errors import MalformedMessage
from shield_orchestrator.services import redis_streams
from shield_orchestrator.services.job_tracker import ACK, FAILED, Outcome
from shield_orchestrator.services.messages import Envelope, parse_envelope
from shield_orchestrator.workers.handlers import malformed_outcome, outcome_of

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)
KNOWN_JOB_S = 30.0  # a job found to exist is not checked again for this long
KNOWN_JOBS_MAX = 10_000  # remembered jobs before the expired ones are dropped


class Admission:
    """Parses and pre-checks batches of one stream's entries (see the module docstring)."""

    def __init__(
        self, redis: Redis, stream: str, kinds: Collection[str], retry_attempts: int
    ) -> None:
        self.redis, self.stream, self.kinds = redis, stream, kinds
        self.delivery_limit = retry_attempts + 1  # deliveries before an entry is poison
        self._known_jobs: dict[str, float] = {}  # job id -> monotonic expiry of "exists"

    async def admit(
        self, entries: Sequence[redis_streams.Entry], redelivered: bool
    ) -> tuple[list[Envelope], list[Outcome]]:
        """(ready, outcomes): the envelopes to run, the outcomes settled without running."""
        outcomes: list[Outcome] = []
        ready: list[Envelope] = []
        for entry_id, fields in entries:
            try:
                ready.append(parse_envelope(entry_id, fields, self.kinds))
            except MalformedMessage as exc:
                outcomes.append(
                    malformed_outcome(entry_id, fields, exc)
                    if fields
                    else Outcome(entry_id, "", "", ACK)  # deleted meanwhile: nothing to do
                )
        if ready:
            try:
                ready = await self._precheck(ready, redelivered, outcomes)
            except _REDIS_ERRORS as exc:  # process them anyway: the Lua decides at the end
                log.warning("pre-check failed: %s", exc, extra={"action": "precheck_failed"})
        return ready, outcomes

    async def _precheck(
        self, ready: list[Envelope], redelivered: bool, outcomes: list[Outcome]
    ) -> list[Envelope]:
        """One round trip per batch: poison (delivery count), unknown job, already counted."""
        if redelivered:
            ready = await self._drop_poison(ready, outcomes)
        now = time.monotonic()
        unknown = sorted({e.job_id for e in ready if self._known_jobs.get(e.job_id, 0) < now})
        if not unknown and not redelivered:
            return ready
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in unknown:
                pipe.exists(keys.job(job_id))
            if redelivered:
                for env in ready:
                    pipe.sismember(keys.job_seen(env.job_id), env.chunk_id)
            replies: list[Any] = await pipe.execute()
        exists = dict(zip(unknown, replies[: len(unknown)], strict=True))
        seen = replies[len(unknown) :]
        if len(self._known_jobs) > KNOWN_JOBS_MAX:
            self._known_jobs = {j: t for j, t in self._known_jobs.items() if t >= now}
        keep = []
        for i, env in enumerate(ready):
            if env.job_id in exists and not exists[env.job_id]:
                outcomes.append(outcome_of(env, FAILED, 0, "malformed: unknown job"))
            elif redelivered and seen[i]:
                outcomes.append(Outcome(env.entry_id, env.job_id, env.chunk_id, ACK))
            else:
                keep.append(env)
        for job_id, found in exists.items():
            if found:
                self._known_jobs[job_id] = now + KNOWN_JOB_S
        return keep

    async def _drop_poison(self, ready: list[Envelope], outcomes: list[Outcome]) -> list[Envelope]:
        """Entries delivered more than retry_attempts + 1 times go to the dead-letter stream."""
        ids = [e.entry_id for e in ready]
        counts = await redis_streams.delivery_counts(self.redis, self.stream, ids)
        keep = []
        for env in ready:
            n = counts.get(env.entry_id, 0)
            if n > self.delivery_limit:
                outcomes.append(outcome_of(env, FAILED, n, f"poison: delivered {n} times"))
            else:
                keep.append(env)
        return keep
