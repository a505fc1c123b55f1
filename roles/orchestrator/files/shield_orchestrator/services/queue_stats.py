"""Depths of the ingestion and dead-letter streams, for health and metrics.

One pipelined round trip: XLEN of both streams, the consumer group's pending count (XPENDING
summary), its consumers (XINFO CONSUMERS: each one's pending entries and idle time) and the
write-behind backlog (SCARD of the dirty-jobs set). A missing stream counts 0; a missing group
(no worker ever started) has no pending entries and no consumers.

``stale_pending_s``: the longest idle time of a consumer that still holds pending entries. A
live worker renews the lease of its in-flight entries every reclaim_idle/3 (XCLAIM JUSTID,
which resets its idle time) and reclaims dead consumers' entries after reclaim_idle, so this
stays below reclaim_idle unless no live worker is there to reclaim them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shield_orchestrator import keys


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int  # entries on the ingestion stream (queued + in flight; acked ones are deleted)
    pending: int  # delivered to a consumer, not acknowledged yet
    dead_letter: int  # entries on the dead-letter stream
    stale_pending_s: float = 0.0  # longest idle of a consumer holding pending entries
    jobs_dirty: int = 0  # jobs whose PostgreSQL row is behind Redis (write-behind backlog)


def _no_group(reply: Any) -> bool:
    """NOGROUP (XPENDING, XINFO CONSUMERS) or, for XINFO on a missing stream, "no such key"."""
    return isinstance(reply, ResponseError) and (
        "NOGROUP" in str(reply) or "no such key" in str(reply)
    )


def _raise_errors(*replies: Any) -> None:
    for reply in replies:
        if isinstance(reply, Exception) and not _no_group(reply):
            raise reply


async def queue_stats(redis: Redis) -> QueueStats:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.INGESTION_STREAM)
        pipe.xlen(keys.DEAD_LETTER_STREAM)
        pipe.xpending(keys.INGESTION_STREAM, keys.CONSUMER_GROUP)
        pipe.xinfo_consumers(keys.INGESTION_STREAM, keys.CONSUMER_GROUP)
        pipe.scard(keys.JOBS_DIRTY)
        depth, dead, pending, consumers, dirty = await pipe.execute(raise_on_error=False)
    _raise_errors(depth, dead, pending, consumers, dirty)
    count = 0 if _no_group(pending) else int(pending.get("pending") or 0)
    stale_ms = 0
    if not _no_group(consumers):
        held = [int(c.get("idle") or 0) for c in consumers if int(c.get("pending") or 0) > 0]
        stale_ms = max(held, default=0)
    return QueueStats(
        depth=int(depth),
        pending=count,
        dead_letter=int(dead),
        stale_pending_s=stale_ms / 1000,
        jobs_dirty=int(dirty),
    )
