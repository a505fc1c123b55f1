"""The event bus: one bounded Redis stream (keys.EVENTS_STREAM, XADD MAXLEN ~ EVENTS_MAXLEN).

An entry is ``{type, job_id, data}`` where ``data`` is a JSON object that always carries
``job_id`` (empty for worker events). The entry id is the SSE id: a client resumes with
``Last-Event-ID`` by reading after it. Events of one job are in order because every writer
appends to the same stream (the progress Lua writes ingestion.started/progress/chunk_failed/
completed/failed in the same atomic call that changes the counters).

Payloads written by the progress Lua (services/job_tracker.py), all with ``job_id``:
``ingestion.started`` {chunks_total}; ``ingestion.progress`` {chunk_ids (the chunks counted
by this batch, one event per job per recorded batch), chunk_id (the last of them),
chunks_processed, chunks_failed, chunks_total, percent_complete}; ``ingestion.chunk_failed``
{chunk_id, error, attempts, and the same counters}; ``ingestion.completed`` /
``ingestion.failed`` {status, chunks_processed, chunks_failed, chunks_total}. Counters in
successive events of a job never decrease.

Writers: the API (ingestion.queued, in the job-creation MULTI: :func:`queue_event`), the
progress Lua in services/job_tracker.py (it spells the same field names), the pool
(worker.started / worker.stopped: :func:`emit`). Reader: the SSE route (:func:`read_events`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shield_orchestrator import keys


class EventType(StrEnum):
    QUEUED = "ingestion.queued"
    STARTED = "ingestion.started"
    PROGRESS = "ingestion.progress"
    COMPLETED = "ingestion.completed"
    FAILED = "ingestion.failed"
    CHUNK_FAILED = "ingestion.chunk_failed"
    WORKER_STARTED = "worker.started"
    WORKER_STOPPED = "worker.stopped"


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


def queue_event(
    pipe: Pipeline, event_type: EventType | str, data: Mapping[str, Any], job_id: str = ""
) -> None:
    """Add the XADD of one event to a pipeline / MULTI (its id is in the pipeline's results)."""
    pipe.xadd(
        keys.EVENTS_STREAM,
        event_fields(event_type, data, job_id),  # type: ignore[arg-type]
        maxlen=keys.EVENTS_MAXLEN,
        approximate=True,
    )


async def emit(
    redis: Redis, event_type: EventType | str, data: Mapping[str, Any], job_id: str = ""
) -> str:
    """Append one event; returns its id."""
    entry_id = await redis.xadd(
        keys.EVENTS_STREAM,
        event_fields(event_type, data, job_id),  # type: ignore[arg-type]
        maxlen=keys.EVENTS_MAXLEN,
        approximate=True,
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


async def read_events_page(
    redis: Redis,
    after_id: str = "$",
    job_id: str | None = None,
    block_ms: int | None = None,
    count: int = 100,
) -> tuple[list[Event], str]:
    """Events after ``after_id`` (``"0"``: from the oldest kept, ``"$"``: only new ones).

    Returns ``(events, cursor)``: pass ``cursor`` as the next ``after_id``. With a ``job_id``
    filter the cursor still advances over other jobs' events, so a quiet job does not make the
    reader scan the same entries again. ``block_ms`` None returns at once; otherwise XREAD
    BLOCKs up to that long for the first entry. A ``"$"`` cursor is resolved to the id of the
    newest entry so that it can be reused.
    """
    if after_id == "$":
        last: Any = await redis.xrevrange(keys.EVENTS_STREAM, count=1)
        after_id = _text(last[0][0]) if last else "0-0"
    reply: Any = await redis.xread({keys.EVENTS_STREAM: after_id}, count=count, block=block_ms)
    events: list[Event] = []
    cursor = after_id
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            event = _event(entry_id, fields)
            cursor = event.id
            if job_id is None or event.job_id == job_id:
                events.append(event)
    return events, cursor


async def read_events(
    redis: Redis,
    after_id: str = "0",
    job_id: str | None = None,
    block_ms: int | None = None,
    count: int = 100,
) -> list[Event]:
    """Events after ``after_id`` (filtered by job), as :class:`Event` (id, type, job_id, data).

    Prefer :func:`read_events_page` in a loop: its cursor also skips filtered-out entries.
    """
    events, _cursor = await read_events_page(redis, after_id, job_id, block_ms, count)
    return events
