"""Put jobs on the ingestion stream the way the API does (job hash + chunks + queued event).

Used by the worker runtime's integration and acceptance tests; names come from the rendered
``keys`` module, never spelled here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

ChunkMeta = Callable[[int], Mapping[str, Any]]


def chunk_fields(job_id: str, i: int, metadata: Mapping[str, Any] | None = None) -> dict[str, str]:
    body = {
        "text": f"chunk {i} of {job_id}",
        "source_uri": f"test://{job_id}/{i}",
        "source_type": "text",
        "workspace": "default",
        "metadata": dict(metadata or {}),
    }
    return {
        "v": "1",
        "kind": "ingest_chunk",
        "job_id": job_id,
        "chunk_id": f"c{i:06d}",
        "body": json.dumps(body),
    }


async def enqueue_job(
    redis: Any, n_chunks: int, meta: ChunkMeta | None = None, job_id: str | None = None
) -> str:
    """One MULTI: HSET job hash, XADD every chunk, XADD ingestion.queued. Returns the job id."""
    from shield_orchestrator import keys
    from shield_orchestrator.services.event_bus import EventType, queue_event
    from shield_orchestrator.services.job_status import new_job_fields

    job_id = job_id or str(uuid.uuid4())
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.job(job_id), mapping=new_job_fields(job_id, n_chunks, "default", time.time())
        )
        for i in range(n_chunks):
            pipe.xadd(keys.INGESTION_STREAM, chunk_fields(job_id, i, meta(i) if meta else None))
        queue_event(pipe, EventType.QUEUED, {"chunks_total": n_chunks}, job_id=job_id)
        await pipe.execute()
    return job_id


async def insert_job_row(db: Any, job_id: str, n_chunks: int) -> None:
    """The job's PostgreSQL row, as the API writes it before queueing."""
    from shield_orchestrator.database.queries import query

    await db.execute(query("insert_job"), job_id, "ingest", "default", n_chunks, None, "{}",
                     dt.datetime.now(dt.UTC))  # fmt: skip


async def job_hash(redis: Any, job_id: str) -> dict[str, str]:
    from shield_orchestrator import keys

    return dict(await redis.hgetall(keys.job(job_id)))


async def events_of(redis: Any, job_id: str) -> list[Any]:
    from shield_orchestrator.services.event_bus import read_events

    out: list[Any] = []
    cursor = "0"
    while True:
        batch = await read_events(redis, after_id=cursor, count=1000)
        if not batch:
            return [e for e in out if e.job_id == job_id]
        out.extend(batch)
        cursor = batch[-1].id


async def dead_letters(redis: Any) -> list[dict[str, str]]:
    from shield_orchestrator import keys

    return [dict(f) for _id, f in await redis.xrange(keys.DEAD_LETTER_STREAM)]


def progress_chunk_ids(events: list[Any]) -> list[str]:
    """Chunk ids reported by ingestion.progress events (one event may carry a batch)."""
    return [c for e in events if e.type == "ingestion.progress" for c in e.data["chunk_ids"]]
