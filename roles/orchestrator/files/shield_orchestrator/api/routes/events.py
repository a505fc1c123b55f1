"""GET /events/stream: Server-Sent Events, resumable; with ``job_id``, one job's whole story.

Each SSE ``id:`` is the event's stream entry id, the same in the global stream and in the
job's own stream (services/event_bus.py). A client that reconnects with ``Last-Event-ID``
(browsers do it by themselves) reads from just after that id, so no event is lost or repeated
across a reconnect. Without it the stream starts after ``since`` (an event id; ``0`` replays
every kept event).

Without ``job_id``: every event of the global stream, from the events that come next unless a
cursor says otherwise; it never ends. With ``job_id``: that job's stream alone
(services/job_events.py): from its first event (``ingestion.queued``) unless a cursor says
otherwise, then live, and the response ENDS after the job's terminal event, so the
``events_url`` of a 202 can be followed to the end (``curl -N``). Entries lost to trimming
(or expiry) come back as one ``ingestion.state`` event, the job as it is; an unknown job is
a 404. Keep-alive comments go out every ``sse_ping_s``. On server shutdown sse-starlette sets
``shutdown``: the loop returns after its current blocking read, so the response ends properly
(last chunk sent) and uvicorn exits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent

from shield_orchestrator.api.deps import ConfigDep, DbDep, RedisDep
from shield_orchestrator.api.models import error_responses
from shield_orchestrator.errors import JobNotFound
from shield_orchestrator.services.event_bus import Event, latest_id, read_events
from shield_orchestrator.services.job_events import open_job_stream

router = APIRouter(tags=["events"])

_U64 = 2**64 - 1
STREAM_ID_PATTERN = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def _checked_id(value: str, loc: tuple[str, str]) -> str:
    ms, _, seq = value.partition("-")
    if int(ms) > _U64 or (seq and int(seq) > _U64):
        raise RequestValidationError(
            [
                {
                    "loc": loc,
                    "msg": "not a stream id (<ms>-<seq>, 64-bit parts)",
                    "type": "value_error",
                }
            ]
        )
    return value


@router.get(
    "/events/stream",
    response_class=EventSourceResponse,
    responses=error_responses(
        401,
        404,
        422,
        extra={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "Events: id = stream entry id, event = type, data = JSON object",
            }
        },
    ),
    summary="Server-Sent Events (ingestion.*, worker.*), resumable; a job's stream ends with it",
)
async def stream_events(
    request: Request,
    redis: RedisDep,
    db: DbDep,
    config: ConfigDep,
    job_id: Annotated[
        UUID | None, Query(description="Only this job's events, from its first; ends with it.")
    ] = None,
    since: Annotated[
        str | None,
        Query(pattern=STREAM_ID_PATTERN, description="Start after this event id (0: all kept)."),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=STREAM_ID_PATTERN)
    ] = None,
) -> EventSourceResponse:
    start: str | None = None
    if last_event_id is not None:
        start = _checked_id(last_event_id, ("header", "Last-Event-ID"))
    elif since is not None:
        start = _checked_id(since, ("query", "since"))

    shutdown = anyio.Event()  # set by sse-starlette when the server shuts down
    events: AsyncIterator[Event]
    if job_id is not None:
        job = await open_job_stream(redis, db, str(job_id), start)
        if job is None:
            raise JobNotFound(f"no job {job_id} (unknown, or expired from Redis and PostgreSQL)")
        events = job.events(
            block_ms=config.sse_block_ms, count=config.sse_batch, stopped=shutdown.is_set
        )
    else:
        cursor = start or await latest_id(redis)
        events = _all_events(redis, cursor, config.sse_block_ms, config.sse_batch, shutdown)

    async def sse() -> AsyncIterator[ServerSentEvent]:
        async for event in events:  # returns at shutdown: the response ends with its last chunk
            yield ServerSentEvent(
                data=json.dumps(event.data, separators=(",", ":")), event=event.type, id=event.id
            )

    return EventSourceResponse(
        sse(),
        ping=config.sse_ping_s,
        send_timeout=30,
        shutdown_event=shutdown,
        shutdown_grace_period=2 * config.sse_block_ms / 1000 + 0.5,  # > one blocking XREAD
    )


async def _all_events(
    redis: Redis, cursor: str, block_ms: int, count: int, shutdown: anyio.Event
) -> AsyncIterator[Event]:
    """Every event after ``cursor`` from the global stream, until the server shuts down."""
    while not shutdown.is_set():
        page = await read_events(redis, cursor, block_ms=block_ms, count=count)
        for event in page:
            cursor = event.id
            yield event
