"""Depths of the workspaces' ingestion streams and the dead-letter stream, for health and metrics.

One pipelined round trip: per declared workspace (keys.WORKSPACES) the XLEN of its stream, the
consumer group's pending count (XPENDING summary) and its consumers (XINFO CONSUMERS: each one's
pending entries and idle time); the dead-letter XLEN and the write-behind backlog (SCARD of the
dirty-jobs set). A missing stream counts 0; a missing group (no worker ever read that
workspace) has no pending entries and no consumers. The totals sum the workspaces.

``stale_pending_s``: the longest idle time of a consumer that still holds pending entries. A
live worker renews the lease of its in-flight entries every reclaim_idle/3 (XCLAIM JUSTID,
which resets its idle time) and reclaims dead consumers' entries after reclaim_idle, so this
stays below reclaim_idle unless no live worker is there to reclaim them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shield_orchestrator import keys


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One workspace's ingestion stream."""

    workspace: str
    depth: int  # entries on the stream (queued + in flight; acked ones are deleted)
    pending: int  # delivered to a consumer, not acknowledged yet
    stale_pending_s: float = 0.0  # longest idle of a consumer holding pending entries


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int  # entries on every workspace's stream
    pending: int  # delivered to a consumer, not acknowledged yet (every workspace)
    dead_letter: int  # entries on the dead-letter stream
    stale_pending_s: float = 0.0  # longest idle of a consumer holding pending entries
    jobs_dirty: int = 0  # jobs whose PostgreSQL row is behind Redis (write-behind backlog)
    workspaces: tuple[StreamStats, ...] = ()


def _no_group(reply: Any) -> bool:
    """NOGROUP (XPENDING, XINFO CONSUMERS) or, for XINFO on a missing stream, "no such key"."""
    return isinstance(reply, ResponseError) and (
        "NOGROUP" in str(reply) or "no such key" in str(reply)
    )


def _raise_errors(*replies: Any) -> None:
    for reply in replies:
        if isinstance(reply, Exception) and not _no_group(reply):
            raise reply


def _stream_stats(workspace: str, depth: Any, pending: Any, consumers: Any) -> StreamStats:
    _raise_errors(depth, pending, consumers)
    count = 0 if _no_group(pending) else int(pending.get("pending") or 0)
    stale_ms = 0
    if not _no_group(consumers):
        held = [int(c.get("idle") or 0) for c in consumers if int(c.get("pending") or 0) > 0]
        stale_ms = max(held, default=0)
    return StreamStats(workspace, int(depth), count, stale_ms / 1000)


async def queue_stats(redis: Redis, workspaces: Sequence[str] = keys.WORKSPACES) -> QueueStats:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.DEAD_LETTER_STREAM)
        pipe.scard(keys.JOBS_DIRTY)
        for ws in workspaces:
            stream = keys.ingestion_stream(ws)
            pipe.xlen(stream)
            pipe.xpending(stream, keys.CONSUMER_GROUP)
            pipe.xinfo_consumers(stream, keys.CONSUMER_GROUP)
        replies = await pipe.execute(raise_on_error=False)
    dead, dirty = replies[0], replies[1]
    _raise_errors(dead, dirty)
    per = tuple(
        _stream_stats(ws, *replies[2 + 3 * i : 5 + 3 * i]) for i, ws in enumerate(workspaces)
    )
    return QueueStats(
        depth=sum(w.depth for w in per),
        pending=sum(w.pending for w in per),
        dead_letter=int(dead),
        stale_pending_s=max((w.stale_pending_s for w in per), default=0.0),
        jobs_dirty=int(dirty),
        workspaces=per,
    )
