"""The event bus: one bounded Redis stream of every event, and one bounded stream per job.

``keys.EVENTS_STREAM`` (XADD MAXLEN ~ EVENTS_MAXLEN) holds every event: the unfiltered SSE
endpoint and the metrics read it. ``keys.job_events(job_id)`` (MAXLEN ~ JOB_EVENTS_MAXLEN, the
job's TTL) holds that job's events alone, so a follower of one job reads nothing else
(services/job_events.py). Every writer appends an event to both in ONE Lua call
(:data:`EVENT_LUA`'s ``add_event``): first to the global stream with id ``*``, then to the
job's stream with the id that XADD returned. So an event has one id, the SSE ``id:``, in both
streams; a client resumes with ``Last-Event-ID`` (or ``since``) by reading after it, in either.
If the job's stream is ahead of that id (only when the global stream was deleted and created
again), the copy gets a fresh id ``*`` rather than failing the writer's call.

An entry is ``{type, job_id, data}`` where ``data`` is a JSON object that always carries
``job_id`` (empty for worker events). Events of one job are in order because every writer
appends in the same atomic call that changes the job (the API's ENQUEUE_LUA in
services/job_registry.py, the progress Lua in services/job_tracker.py).

Payloads written by the progress Lua, all with ``job_id``: ``ingestion.started``
{chunks_total}; ``ingestion.progress`` {chunk_ids (the chunks counted by this batch, one event
per job per recorded batch), chunk_id (the last of them), chunks_processed, chunks_failed,
chunks_total, percent_complete}; ``ingestion.chunk_failed`` {chunk_id, error, attempts, and the
same counters}; ``ingestion.completed`` / ``ingestion.failed`` {status, chunks_processed,
chunks_failed, chunks_total} (the terminal event: ``completed`` also for completed_with_errors).
Counters in successive events of a job never decrease. ``ingestion.state`` is never stored: the
job stream endpoint makes it from the job (services/job_events.py).

Writers: the API (ingestion.queued, in ENQUEUE_LUA), the progress Lua, the pool
(worker.started / worker.stopped: :func:`emit`). Readers: the SSE route (:func:`read_events`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from shield_orchestrator import keys


class EventType(StrEnum):
    QUEUED = "ingestion.queued"
    STARTED = "ingestion.started"
    PROGRESS = "ingestion.progress"
    COMPLETED = "ingestion.completed"
    FAILED = "ingestion.failed"
    CHUNK_FAILED = "ingestion.chunk_failed"
    STATE = "ingestion.state"  # made by the job stream endpoint, never stored
    WORKER_STARTED = "worker.started"
    WORKER_STOPPED = "worker.stopped"


# The last event of a job: its stream ends after it.
TERMINAL_EVENTS: frozenset[str] = frozenset({EventType.COMPLETED, EventType.FAILED})

# Lua, prepended to every script that writes an event. add_event(events stream, its maxlen,
# the job's stream or nil, type, job id, data JSON) -> the event's id (see the module doc).
EVENT_LUA = """
local function add_event(events_key, events_maxlen, job_key, etype, job_id, data)
  local id = redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*', 'type', etype,
    'job_id', job_id, 'data', data)
  if job_key then
    local r = redis.pcall('XADD', job_key, 'MAXLEN', '~', JOB_EVENTS_MAXLEN, id, 'type', etype,
      'job_id', job_id, 'data', data)
    if type(r) == 'table' and r.err then
      redis.call('XADD', job_key, 'MAXLEN', '~', JOB_EVENTS_MAXLEN, '*', 'type', etype,
        'job_id', job_id, 'data', data)
    end
  end
  return id
end
""".replace("JOB_EVENTS_MAXLEN", str(keys.JOB_EVENTS_MAXLEN))

# KEYS: 1 events stream, 2 the job's stream (absent for a worker event).
# ARGV: 1 events maxlen, 2 type, 3 job id, 4 data JSON. Returns the event's id.
EMIT_LUA = EVENT_LUA + "return add_event(KEYS[1], ARGV[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4])"


@dataclass(frozen=True, slots=True)
class Event:
    """One event as read back: ``id`` is the stream entry id (the SSE ``id:`` line)."""

    id: str
    type: str
    job_id: str
    data: dict[str, Any]


def event_fields(
    event_type: EventType | str, data: Mapping[str, Any], job_id: str = ""
) -> dict[str, str]:
    """The fields of one event entry (also used by scripts that XADD an event themselves)."""
    payload = dict(data)
    payload.setdefault("job_id", job_id)
    return {
        "type": str(event_type),
        "job_id": job_id,
        "data": json.dumps(payload, separators=(",", ":"), sort_keys=True),
    }


async def emit(
    redis: Redis, event_type: EventType | str, data: Mapping[str, Any], job_id: str = ""
) -> str:
    """Append one event (to its job's stream too when it has a job); returns its id."""
    fields = event_fields(event_type, data, job_id)
    stream_keys = [keys.EVENTS_STREAM] + ([keys.job_events(job_id)] if job_id else [])
    entry_id: Any = await redis.eval(
        EMIT_LUA,
        len(stream_keys),
        *stream_keys,
        keys.EVENTS_MAXLEN,
        fields["type"],
        job_id,
        fields["data"],
    )
    return _text(entry_id)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(entry_id: str | bytes, fields: Mapping[Any, Any]) -> Event:
    f = {_text(k): _text(v) for k, v in fields.items()}
    try:
        data = json.loads(f.get("data") or "{}")
    except ValueError:
        data = {"raw": f.get("data", "")}
    if not isinstance(data, dict):
        data = {"value": data}
    return Event(id=_text(entry_id), type=f.get("type", ""), job_id=f.get("job_id", ""), data=data)


def stream_id(value: str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>`` or ``<ms>``) as a tuple that orders like Redis."""
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


async def latest_id(redis: Redis) -> str:
    """The id of the newest event of the global stream (``0-0`` when empty): what ``$`` means
    now, as a cursor that can be read after again."""
    last: Any = await redis.xrevrange(keys.EVENTS_STREAM, count=1)
    return _text(last[0][0]) if last else "0-0"


async def read_events(
    redis: Redis,
    after_id: str = "0",
    job_id: str | None = None,
    block_ms: int | None = None,
    count: int = 100,
) -> list[Event]:
    """Events after ``after_id`` (``"0"``: from the oldest kept), oldest first.

    With ``job_id``: from that job's own stream (no other job's entry is read), else from the
    global stream. ``block_ms`` None returns at once; otherwise XREAD BLOCKs up to that long
    for the first entry. The last event's id is the next ``after_id``.
    """
    stream = keys.EVENTS_STREAM if job_id is None else keys.job_events(job_id)
    reply: Any = await redis.xread({stream: after_id}, count=count, block=block_ms)
    return [_event(entry_id, fields) for _s, entries in reply or [] for entry_id, fields in entries]
