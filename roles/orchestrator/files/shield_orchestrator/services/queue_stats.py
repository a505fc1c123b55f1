"""Depths of the ingestion and dead-letter streams, for back-pressure, health and metrics.

One pipelined round trip: XLEN of both streams and the consumer group's pending count
(XPENDING summary). A missing stream counts 0; a missing group (no worker ever started) has
no pending entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shield_orchestrator import keys


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int  # entries on the ingestion stream (queued + in flight; acked ones are deleted)
    pending: int  # delivered to a consumer, not acknowledged yet
    dead_letter: int  # entries on the dead-letter stream


async def queue_stats(redis: Redis) -> QueueStats:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.INGESTION_STREAM)
        pipe.xlen(keys.DEAD_LETTER_STREAM)
        pipe.xpending(keys.INGESTION_STREAM, keys.CONSUMER_GROUP)
        depth, dead, pending = await pipe.execute(raise_on_error=False)
    if isinstance(depth, Exception):
        raise depth
    if isinstance(dead, Exception):
        raise dead
    if isinstance(pending, ResponseError) and "NOGROUP" in str(pending):
        count = 0
    elif isinstance(pending, Exception):
        raise pending
    else:
        count = int(pending.get("pending") or 0)
    return QueueStats(depth=int(depth), pending=count, dead_letter=int(dead))
