"""One job's event stream: its history, then its live events, then the end.

What ``GET /events/stream?job_id=`` sends (the route is api/routes/events.py)::

    open_job_stream    one Lua call reads, atomically: the job hash, whether the job's stream
                       (keys.job_events) lost entries after the cursor (XINFO: it was trimmed
                       and its first kept entry is after the cursor, or there is no stream),
                       and the global stream's last id (the "head")
        no hash, no PostgreSQL row          -> None (the route answers 404)
        no hash, a PostgreSQL row           -> ingestion.state, then the end (nothing will
                                               ever be written for that job again)
        entries after the cursor were lost  -> ingestion.state (the job as it is now) with
           (trimmed by MAXLEN ~, or a job      SSE id = head, then the events after head
           older than per-job streams)
        else                                -> the events after the cursor (0: all of them)
    follow             XREAD BLOCK on the job's stream only; the response ends after the
                       terminal event (ingestion.completed / ingestion.failed), or, when the
                       job is already over and nothing is left after the cursor, at once

``ingestion.state`` {job_id, status, workspace, chunks_total, chunks_processed, chunks_failed,
percent_complete} stands for every event up to its id: the hash was read in the same call as
the head, and every event is written in the same Lua call as the hash change it reports, with
an id above every earlier one. So resuming after it (``Last-Event-ID``) loses and repeats
nothing, and counters never go down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shield_orchestrator import keys
from shield_orchestrator.services.event_bus import (
    TERMINAL_EVENTS,
    Event,
    EventType,
    read_events,
    stream_id,
)
from shield_orchestrator.services.job_status import (
    JobStatus,
    JobView,
    fetch_job,
    job_view_from_hash,
)

# KEYS: 1 job hash, 2 the job's stream, 3 the global events stream.
# Returns {job hash as a flat list, the id of the job stream's first kept entry ('' = no
# stream, '0-0' = none trimmed: entries-added = length), the global stream's
# last-generated-id ('0-0' = no stream)}. Trimming (MAXLEN ~) removes the oldest entries only.
_OPEN_LUA = """
local function info(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  local i, f = redis.call('XINFO', 'STREAM', key), {}
  for n = 1, #i, 2 do f[i[n]] = i[n + 1] end
  return f
end
local job, all = info(KEYS[2]), info(KEYS[3])
local first = ''
if job then
  first = '0-0'
  if job['entries-added'] > job['length'] then first = job['recorded-first-entry-id'] end
end
return {redis.call('HGETALL', KEYS[1]), first, all and all['last-generated-id'] or '0-0'}
"""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def state_event(job: JobView, event_id: str) -> Event:
    """The job as it is now, as the event that stands for its history up to ``event_id``."""
    data: dict[str, Any] = {
        "job_id": job.job_id,
        "status": job.status.value,
        "workspace": job.workspace,
        "chunks_total": job.chunks_total,
        "chunks_processed": job.chunks_processed,
        "chunks_failed": job.chunks_failed,
        "percent_complete": job.percent_complete,
    }
    return Event(id=event_id, type=EventType.STATE, job_id=job.job_id, data=data)


@dataclass(slots=True)
class JobStream:
    """A known job's stream, opened before the response starts (so an unknown job is a 404)."""

    redis: Redis
    job_id: str
    cursor: str  # the id of the last event sent (or to start after)
    first: Event | None  # an ingestion.state to send first, or None
    over: bool  # the job is over: end as soon as nothing is left after the cursor
    live: bool  # the job still lives in Redis (False: only its PostgreSQL row is left)

    async def events(
        self, *, block_ms: int, count: int, stopped: Callable[[], bool]
    ) -> AsyncIterator[Event]:
        """The events to send, in order; returns after the terminal one (or when ``stopped``)."""
        if self.first is not None:
            yield self.first
            if self.over or not self.live:
                return
        while not stopped():
            page = await read_events(
                self.redis,
                self.cursor,
                self.job_id,
                block_ms=None if self.over else block_ms,
                count=count,
            )
            for event in page:
                self.cursor = event.id
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
            if not page:
                if self.over:
                    return
                # Over without a terminal event on this stream (it was written by a worker
                # older than per-job streams, or the job expired): one last read, then end.
                self.over = await _job_over(self.redis, self.job_id)


async def _job_over(redis: Redis, job_id: str) -> bool:
    status: Any = await redis.hget(keys.job(job_id), "status")
    return status is None or JobStatus(_text(status)).is_terminal


async def open_job_stream(
    redis: Redis, db: Any, job_id: str, after_id: str | None
) -> JobStream | None:
    """The job's stream from after ``after_id`` (None: from its first event); None when no
    such job exists in Redis or PostgreSQL (``db``: an asyncpg pool)."""
    reply: Any = await redis.eval(
        _OPEN_LUA, 3, keys.job(job_id), keys.job_events(job_id), keys.EVENTS_STREAM
    )
    flat = [_text(v) for v in reply[0]]
    first_kept, head = _text(reply[1]), _text(reply[2])
    cursor = after_id or "0-0"
    if not flat:  # expired from Redis (or never there): PostgreSQL has the last word
        job = await fetch_job(redis, db, job_id)
        if job is None:
            return None
        return JobStream(redis, job_id, head, state_event(job, head), over=True, live=False)
    job = job_view_from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
    over = job.status.is_terminal
    if first_kept and stream_id(first_kept) <= stream_id(cursor):  # nothing lost after cursor
        return JobStream(redis, job_id, cursor, None, over=over, live=True)
    return JobStream(redis, job_id, head, state_event(job, head), over=over, live=True)
