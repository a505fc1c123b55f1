"""Put jobs on the ingestion stream through the API's own producer, and read what they left.

:func:`enqueue_job` calls ``JobRegistry.create`` (the PostgreSQL row, then the enqueue Lua),
so the worker, acceptance and fault tests consume exactly what production writes: 1-based
chunk ids, pydantic-core bodies, the queued event. :func:`chunk_message` is the test oracle of
the message contract (ARCHITECTURE.md, "A chunk message"), written independently of the
producer. Key names come from the rendered ``keys`` module, never spelled here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

ChunkMeta = Callable[[int], Mapping[str, Any]]


def chunk_id(n: int) -> str:
    """The id the producer gives the n-th chunk of a job (1-based)."""
    return f"c{n:06d}"


def chunk_ids(n_chunks: int) -> list[str]:
    """Every chunk id of a job of ``n_chunks`` chunks, in order."""
    return [chunk_id(n) for n in range(1, n_chunks + 1)]


def chunk_message(
    job_id: str,
    cid: str,
    text: str,
    source_uri: str,
    metadata: Mapping[str, Any] | None,
    source_type: str,
    workspace: str,
) -> dict[str, str]:
    """The fields of one ingestion-stream entry, by the contract: the oracle of the tests.

    The version and kind are the contract's names (services/messages.py; their values are
    pinned by tests/unit/test_messages.py); the body is encoded here, by ``json.dumps``."""
    from shield_orchestrator.services.messages import INGEST_CHUNK, MESSAGE_VERSION

    body = {
        "text": text,
        "source_uri": source_uri,
        "source_type": source_type,
        "workspace": workspace,
        "metadata": dict(metadata or {}),
    }
    return {
        "v": MESSAGE_VERSION,
        "kind": INGEST_CHUNK,
        "job_id": job_id,
        "chunk_id": cid,
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    }


def chunk_fields(job_id: str, n: int, metadata: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The oracle's entry of chunk n (1-based) of a job: for the benchmarks that preload a
    stream faster than the API could (bench/); tests enqueue with :func:`enqueue_job`."""
    text, uri = f"chunk {n}", f"test://chunk/{n}"
    return chunk_message(job_id, chunk_id(n), text, uri, metadata, "text", "default")


async def insert_job_row(db: Any, job_id: str, n_chunks: int) -> None:
    """The job's PostgreSQL row, as the producer writes it (for the benchmarks' preloads)."""
    import datetime as dt

    from shield_orchestrator.database.queries import query

    now = dt.datetime.now(dt.UTC)
    await db.execute(query("insert_job"), job_id, "ingest", "default", n_chunks, None, "{}", now)


async def enqueue_job(
    redis: Any, db: Any, n_chunks: int, meta: ChunkMeta | None = None, workspace: str = ""
) -> str:
    """Create a job of ``n_chunks`` chunks the way ``POST /ingest`` does; returns its id.

    Chunk n (1-based, id ``c00000n``) has text ``chunk n`` and metadata ``meta(n)`` (the noop
    engine's ``noop_*`` switches). ``workspace``: default the first declared one."""
    from shield_orchestrator import keys
    from shield_orchestrator.services.job_registry import JobRegistry, NewChunk, NewJob

    registry = JobRegistry(redis, db, max_queue_pending=10**9, idempotency_ttl_s=60)
    chunks = [
        NewChunk(f"chunk {n}", f"test://chunk/{n}", meta(n) if meta else None)
        for n in range(1, n_chunks + 1)
    ]
    created = await registry.create(NewJob(chunks, "text", workspace or keys.WORKSPACES[0]))
    return created.job_id


async def job_hash(redis: Any, job_id: str) -> dict[str, str]:
    from shield_orchestrator import keys

    return dict(await redis.hgetall(keys.job(job_id)))


class Event(NamedTuple):
    """One entry of the events stream, as a reader sees it."""

    id: str
    type: str
    job_id: str
    data: dict[str, Any]


async def events_of(redis: Any, job_id: str) -> list[Event]:
    """Every kept event of ``job_id`` ("" for the workers' own events), oldest first."""
    from shield_orchestrator import keys

    entries = await redis.xrange(keys.EVENTS_STREAM)
    events = [Event(i, f["type"], f["job_id"], json.loads(f["data"])) for i, f in entries]
    return [e for e in events if e.job_id == job_id]


async def dead_letters(redis: Any) -> list[dict[str, str]]:
    from shield_orchestrator import keys

    return [dict(f) for _id, f in await redis.xrange(keys.DEAD_LETTER_STREAM)]


def progress_chunk_ids(events: list[Event]) -> list[str]:
    """Chunk ids reported by ingestion.progress events (one event may carry a batch)."""
    return [c for e in events if e.type == "ingestion.progress" for c in e.data["chunk_ids"]]
