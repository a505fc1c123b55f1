"""GET /events/stream: Server-Sent Events from the event bus, resumable, filterable by job.

Each SSE ``id:`` is the event's stream entry id. A client that reconnects with
``Last-Event-ID`` (browsers do it by themselves) reads from just after that id, so no event is
lost or repeated across a reconnect while the event is still kept (MAXLEN ~). Without it the
stream starts after ``since`` (an event id; ``0`` replays every kept event), else with the
events that come next. ``job_id`` keeps one job's events. Keep-alive comments go out every
``sse_ping_s``. On server shutdown sse-starlette sets ``shutdown``: the loop returns after its
current blocking read, so the response ends properly (last chunk sent) and uvicorn exits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from shield_orchestrator.api.deps import ConfigDep, RedisDep
from shield_orchestrator.api.models import error_responses
from shield_orchestrator.services.event_bus import read_events_page

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
        422,
        extra={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "Events: id = stream entry id, event = type, data = JSON object",
            }
        },
    ),
    summary="Server-Sent Events (ingestion.*, worker.*), resumable with Last-Event-ID",
)
async def stream_events(
    request: Request,
    redis: RedisDep,
    config: ConfigDep,
    job_id: Annotated[UUID | None, Query(description="Only this job's events.")] = None,
    since: Annotated[
        str | None,
        Query(pattern=STREAM_ID_PATTERN, description="Start after this event id (0: all kept)."),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=STREAM_ID_PATTERN)
    ] = None,
) -> EventSourceResponse:
    if last_event_id is not None:
        start = _checked_id(last_event_id, ("header", "Last-Event-ID"))
    elif since is not None:
        start = _checked_id(since, ("query", "since"))
    else:
        start = "$"
    only = None if job_id is None else str(job_id)

    shutdown = anyio.Event()  # set by sse-starlette when the server shuts down

    async def events() -> AsyncIterator[ServerSentEvent]:
        cursor = start
        while not shutdown.is_set():  # then return: the response ends with its last chunk
            page, cursor = await read_events_page(
                redis, cursor, only, block_ms=config.sse_block_ms, count=config.sse_batch
            )
            for event in page:
                yield ServerSentEvent(
                    data=json.dumps(event.data, separators=(",", ":")),
                    event=event.type,
                    id=event.id,
                )

    return EventSourceResponse(
        events(),
        ping=config.sse_ping_s,
        send_timeout=30,
        shutdown_event=shutdown,
        shutdown_grace_period=2 * config.sse_block_ms / 1000 + 0.5,  # > one blocking XREAD
    )
