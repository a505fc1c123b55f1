"""services/job_registry.py against real Redis and PostgreSQL: what the enqueue script writes.

What is proved: the chunks, sent to ENQUEUE_LUA as one framed argument, come out as one stream
entry each with exactly the contract's fields (tests/support/chunks.py ``chunk_message``, the
oracle, written apart from the producer; in the order of services/messages.FIELDS), which the
pool's parser (services/messages.py) reads back as given, in request order, whatever the text holds
(newlines, a literal backslash-n, quotes, non-ASCII, metadata); explicit chunk ids (the
retry-failed path) are kept; a job without an Idempotency-Key writes no idempotency key.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chunks import chunk_id, chunk_message

pytestmark = pytest.mark.integration

TEXTS = (
    "one line",
    "two\nlines\r\nand a tab\t and \x1f control",
    'quotes " and \\ backslash and a literal \\n',
    "unicode é 漢字 😀 and \u2028 line separator",
)


@pytest.fixture
def registry(redis_client: Any, pg_pool: Any) -> Any:
    from shield_orchestrator.services.job_registry import JobRegistry

    return JobRegistry(redis_client, pg_pool, max_queue_pending=10_000, idempotency_ttl_s=60)


async def _entries(redis: Any) -> list[dict[str, str]]:
    from shield_orchestrator import keys

    return [fields for _id, fields in await redis.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))]


async def test_every_chunk_is_one_entry_with_the_contract_fields(
    registry: Any, redis_client: Any
) -> None:
    from shield_orchestrator import keys
    from shield_orchestrator.services import messages
    from shield_orchestrator.services.job_registry import NewChunk, NewJob

    chunks = [
        NewChunk(text, f"file:///doc {i}.txt", {"i": i, "note": text} if i % 2 else None)
        for i, text in enumerate(TEXTS)
    ]
    new = NewJob(chunks, "type é", "default")
    created = await registry.create(new)

    expected = [
        chunk_message(
            created.job_id, chunk_id(n), c.text, c.source_uri, c.metadata, "type é", "default"
        )
        for n, c in enumerate(chunks, 1)
    ]
    entries = await _entries(redis_client)
    assert entries == expected
    assert {tuple(e) for e in entries} == {messages.FIELDS}  # the fields, in the contract's order
    # What the pool reads back (services/messages.py) is what the API was given.
    for n, (entry, chunk) in enumerate(zip(entries, chunks, strict=True), 1):
        env = messages.parse_envelope(f"{n}-0", entry)
        assert (env.kind, env.job_id) == (messages.INGEST_CHUNK, created.job_id)
        assert env.chunk_id == chunk_id(n)
        body = messages.parse_chunk_body(env.body, env.job_id, env.chunk_id)
        assert (body.text, body.source_uri) == (chunk.text, chunk.source_uri)
        assert (body.source_type, body.metadata) == ("type é", dict(chunk.metadata or {}))
    job = await redis_client.hgetall(keys.job(created.job_id))
    assert (job["status"], job["chunks_total"]) == ("queued", str(len(TEXTS)))
    assert [k async for k in redis_client.scan_iter(match=keys.idempotency("*"))] == []


async def test_explicit_chunk_ids_are_kept(registry: Any, redis_client: Any) -> None:
    from shield_orchestrator.services.job_registry import NewChunk, NewJob

    chunks = [NewChunk("x\ny", "u", chunk_id="c000042"), NewChunk("z", "u", chunk_id="c000007")]
    await registry.create(NewJob(chunks, "retry", "default", idempotency_key="retry-failed:j"))

    entries = await _entries(redis_client)
    assert [e["chunk_id"] for e in entries] == ["c000042", "c000007"]
    assert '"text":"x\\ny"' in entries[0]["body"]
