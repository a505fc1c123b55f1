"""The failed chunks of a job, and their re-enqueueing (the API's retry-failed).

Sources, merged by chunk id:

- PostgreSQL ``chunk_failures``: every dead-lettered chunk once the write-behind flusher has
  written it (durable; no chunk body).
- the dead-letter stream ``keys.DEAD_LETTER_STREAM`` (MAXLEN ~): recent failures, including
  ones not flushed yet, and the original message ``body`` when the pool kept it.

Retrying never moves the old job backwards (status is forward only, and its ``seen`` set would
not count a chunk twice): the failed chunks become a NEW job whose ``retry_of`` names the old
one, created through :meth:`JobRegistry.create` with the idempotency key
``retry-failed:<job id>``, so calling retry-failed again returns the same new job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from redis.asyncio import Redis

from shield_orchestrator import keys
from shield_orchestrator.database.queries import query
from shield_orchestrator.errors import JobNotFound, MalformedMessage
from shield_orchestrator.services import messages
from shield_orchestrator.services.job_registry import (
    Created,
    Failure,
    JobRegistry,
    NewChunk,
    NewJob,
    NotRetryable,
)
from shield_orchestrator.services.job_status import epoch_to_datetime, fetch_job

DL_PAGE = 1000  # XRANGE COUNT while scanning the dead-letter stream


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _body(fields: Mapping[str, str]) -> dict[str, Any] | None:
    """The kept ``ingest_chunk`` body of a dead-letter entry (services/messages.py), or None."""
    raw = fields.get("body")
    if not raw:
        return None
    try:
        body = messages.decode_body(raw)
    except MalformedMessage:
        return None
    return body if isinstance(body.get("text"), str) else None


async def dead_letters(redis: Redis, job_id: str) -> dict[str, Failure]:
    """This job's entries of the dead-letter stream, by chunk id (latest entry wins)."""
    found: dict[str, Failure] = {}
    start = "-"
    while True:
        page = cast(
            list[tuple[str, dict[str, str]]],
            await redis.xrange(keys.DEAD_LETTER_STREAM, min=start, max="+", count=DL_PAGE),
        )
        for entry_id, fields in page:
            if fields.get("job_id") != job_id or not fields.get("chunk_id"):
                continue
            body = _body(fields)
            found[fields["chunk_id"]] = Failure(
                chunk_id=fields["chunk_id"],
                error=fields.get("error", ""),
                attempts=_int(fields.get("attempts")),
                failed_at=epoch_to_datetime(fields.get("failed_at")),
                source_uri=None if body is None else str(body.get("source_uri", "")) or None,
                body=body,
            )
            last = entry_id
        if len(page) < DL_PAGE:
            return found
        start = f"({last}"


async def list_failures(redis: Redis, db: Any, job_id: str) -> list[Failure]:
    """Failed chunks of a job (PostgreSQL and the dead-letter stream); JobNotFound if unknown."""
    if await fetch_job(redis, db, job_id) is None:
        raise JobNotFound(f"no job {job_id}")
    merged = await dead_letters(redis, job_id)
    for row in await db.fetch(query("select_failures"), job_id):
        cid = row["chunk_id"]
        if cid not in merged:
            merged[cid] = Failure(
                chunk_id=cid,
                error=row["error"],
                attempts=row["attempts"],
                failed_at=row["failed_at"],
            )
    return [merged[cid] for cid in sorted(merged)]


async def retry_failed(registry: JobRegistry, job_id: str) -> Created:
    """Re-enqueue the failed chunks of a finished job as a new job (idempotent)."""
    job = await fetch_job(registry.redis, registry.db, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    idempotency_key = f"retry-failed:{job_id}"
    earlier = await registry.lookup(idempotency_key)
    if earlier is not None:
        return earlier
    if not job.status.is_terminal:
        raise NotRetryable(f"job {job_id} is still {job.status.value}; retry when it has finished")
    failures = await list_failures(registry.redis, registry.db, job_id)
    if not failures:
        raise NotRetryable(f"job {job_id} has no failed chunks")
    kept = [f for f in failures if f.body is not None]
    if not kept:
        raise NotRetryable(
            f"job {job_id}: the bodies of its {len(failures)} failed chunks are no longer kept"
        )
    first = kept[0].body or {}
    chunks = [
        NewChunk(
            text=str(f.body["text"]),
            source_uri=str(f.body.get("source_uri", "")),
            metadata=f.body.get("metadata") if isinstance(f.body.get("metadata"), dict) else None,
            chunk_id=f.chunk_id,
        )
        for f in kept
        if f.body is not None
    ]
    new = NewJob(
        chunks=chunks,
        source_type=str(first.get("source_type", "retry")),
        workspace=str(first.get("workspace", job.workspace)),
        idempotency_key=idempotency_key,
        retry_of=job_id,
    )
    return await registry.create(new)
