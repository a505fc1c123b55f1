"""POST /lightrag/ingest-async against real Redis and PostgreSQL (ASGITransport, lifespan run).

What is proved: a 202 creates exactly one job row, one job hash, every chunk on the stream and
one ingestion.queued event; Idempotency-Key replays or conflicts; a full queue answers 429 with
Retry-After; a Redis failure in the enqueue script or a PostgreSQL outage leaves nothing
behind (the job row is deleted again); Redis or PostgreSQL unreachable is a 503 with
Retry-After 1 and one error line with its action key; every kind of bad input is a 4xx
naming the field and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import HEADERS, asgi_client
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

URL = "/lightrag/ingest-async"


def body(n: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "chunks": [
            {"text": f"chunk number {i}", "source_uri": f"test://doc/{i}"} for i in range(n)
        ],
        "source_type": "test",
        **extra,
    }


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any) -> AsyncIterator[Any]:
    from tests.support.api import api_settings

    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


async def _written(redis: Any, pg_pool: Any) -> tuple[int, int, int, int]:
    """(job rows, job hashes, chunks on the stream, events) written so far."""
    from shield_orchestrator import keys

    rows = await pg_pool.fetchval("SELECT count(*) FROM jobs")
    hashes = len([k async for k in redis.scan_iter(match=keys.job("*"), _type="hash")])
    return (
        rows,
        hashes,
        await redis.xlen(keys.ingestion_stream(keys.WORKSPACES[0])),
        await redis.xlen(keys.EVENTS_STREAM),
    )


async def test_accepted_job_is_in_postgres_redis_and_on_the_stream(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    from shield_orchestrator import keys

    payload = body(3)
    payload["chunks"][0]["metadata"] = {"page": 7, "tags": ["a"]}
    r = await api.post(URL, json=payload, headers=HEADERS)

    assert r.status_code == 202, r.text
    out = r.json()
    job_id = out["job_id"]
    assert out["status"] == "queued"
    assert out["chunks_total"] == 3
    assert r.headers["location"] == out["status_url"] == f"/jobs/{job_id}"
    assert out["events_url"] == f"/events/stream?job_id={job_id}"
    assert await _written(redis_client, pg_pool) == (1, 1, 3, 1)
    row = await pg_pool.fetchrow("SELECT status, chunks_total FROM jobs WHERE job_id = $1", job_id)
    assert dict(row) == {"status": "queued", "chunks_total": 3}
    entries = await redis_client.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))
    assert [e[1]["chunk_id"] for e in entries] == ["c000001", "c000002", "c000003"]
    first = json.loads(entries[0][1]["body"])
    assert first["text"] == "chunk number 0"
    assert first["source_uri"] == "test://doc/0"
    assert first["metadata"] == {"page": 7, "tags": ["a"]}
    assert first["source_type"] == "test"
    assert entries[0][1]["job_id"] == job_id
    assert entries[0][1]["kind"] == "ingest_chunk"
    [(_, event)] = await redis_client.xrange(keys.EVENTS_STREAM)
    assert event["type"] == "ingestion.queued"
    assert event["job_id"] == job_id


async def test_idempotency_key_returns_the_same_job_or_409(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    headers = HEADERS | {"Idempotency-Key": "order-42"}
    first = await api.post(URL, json=body(2), headers=headers)
    again = await api.post(URL, json=body(2), headers=headers)
    other = await api.post(URL, json=body(3), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 409
    assert first.json()["job_id"] in other.json()["detail"]
    assert await _written(redis_client, pg_pool) == (1, 1, 2, 1)


async def test_idempotency_survives_the_redis_key_expiring(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    from shield_orchestrator import keys

    headers = HEADERS | {"Idempotency-Key": "expiring"}
    first = await api.post(URL, json=body(1), headers=headers)
    await redis_client.delete(keys.idempotency("client:expiring"))

    again = await api.post(URL, json=body(1), headers=headers)
    other = await api.post(URL, json=body(2), headers=headers)

    assert again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 409
    assert await _written(redis_client, pg_pool) == (1, 1, 1, 1)


async def test_full_queue_answers_429_with_retry_after(
    worker_settings: Any, redis_client: Any, pg_pool: Any
) -> None:
    from tests.support.api import api_settings

    async with asgi_client(api_settings(worker_settings), max_queue_pending=5) as api:
        ok = await api.post(URL, json=body(5), headers=HEADERS)
        full = await api.post(URL, json=body(1), headers=HEADERS)

    assert ok.status_code == 202
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) == api.app.state.config.retry_after_s
    assert "limit 5" in full.json()["detail"]
    assert await _written(redis_client, pg_pool) == (1, 1, 5, 1)


async def test_redis_refusing_the_enqueue_script_leaves_no_orphan(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    """noeviction + maxmemory reached: Redis refuses the enqueue script's first write (nothing
    is written), the registry deletes the job row it had inserted."""
    await redis_client.config_set("maxmemory", "1")
    try:
        r = await api.post(URL, json=body(4), headers=HEADERS | {"Idempotency-Key": "oom"})
    finally:
        await redis_client.config_set("maxmemory", "0")

    assert r.status_code == 503
    assert r.json()["detail"] == "redis is out of memory; retry later"
    assert await _written(redis_client, pg_pool) == (0, 0, 0, 0)
    again = await api.post(URL, json=body(4), headers=HEADERS | {"Idempotency-Key": "oom"})
    assert again.status_code == 202, again.text
    assert await _written(redis_client, pg_pool) == (1, 1, 4, 1)


async def test_postgres_down_is_503_and_writes_nothing(
    worker_settings: Any,
    redis_client: Any,
    postgres_srv: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import dataclasses

    from tests.support.api import api_settings
    from tests.support.servers import free_port

    settings = api_settings(dataclasses.replace(worker_settings, postgres_port=free_port()))
    async with asgi_client(settings) as api:
        r = await api.post(URL, json=body(2), headers=HEADERS)

    assert r.status_code == 503
    assert r.json() == {"detail": "postgres unavailable; retry later"}
    assert r.headers["retry-after"] == "1"
    _logged(caplog, "api_postgres_down", f"postgres unavailable on {URL}: ")
    assert await redis_client.dbsize() == 0


async def test_redis_down_is_503(
    worker_settings: Any, redis_srv: RedisServer, pg_pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from tests.support.api import api_settings
    from tests.support.servers import free_port

    settings = api_settings(dataclasses.replace(worker_settings, redis_port=free_port()))
    async with asgi_client(settings) as api:
        r = await api.post(URL, json=body(2), headers=HEADERS)

    assert r.status_code == 503
    assert r.json() == {"detail": "redis unavailable; retry later"}
    assert r.headers["retry-after"] == "1"
    _logged(caplog, "api_redis_down", f"redis unavailable on {URL}: ")
    assert await pg_pool.fetchval("SELECT count(*) FROM jobs") == 0


def _logged(caplog: pytest.LogCaptureFixture, action: str, start: str) -> None:
    """One error line with this action key, naming the path and the exception's class."""
    lines = [r for r in caplog.records if getattr(r, "action", None) == action]
    assert [r.levelname for r in lines] == ["ERROR"], caplog.text
    assert lines[0].getMessage().startswith(start), lines[0].getMessage()


def _limits() -> tuple[int, int, str]:
    from shield_orchestrator import keys
    from shield_orchestrator.api import config

    return config.MAX_CHUNKS_PER_REQUEST, config.MAX_CHUNK_CHARS, keys.WORKSPACES[0]


def _bad_bodies() -> list[tuple[str, Any, list[Any]]]:
    """(case, body, the loc that the 422 must name)."""
    max_chunks, max_chars, _ = _limits()
    good = {"text": "fine", "source_uri": "test://x"}
    return [
        ("empty text", body(1) | {"chunks": [good | {"text": ""}]}, ["body", "chunks", 0, "text"]),
        ("whitespace text", {"chunks": [good, good | {"text": " \n\t "}], "source_type": "t"},
         ["body", "chunks", 1, "text"]),
        ("oversized chunk",
         {"chunks": [good | {"text": "x" * (max_chars + 1)}], "source_type": "t"},
         ["body", "chunks", 0, "text"]),
        ("too many chunks", body(max_chunks + 1), ["body", "chunks"]),
        ("no chunks", body(0), ["body", "chunks"]),
        ("missing source_uri", {"chunks": [{"text": "a"}], "source_type": "t"},
         ["body", "chunks", 0, "source_uri"]),
        ("blank source_uri", {"chunks": [good | {"source_uri": "  "}], "source_type": "t"},
         ["body", "chunks", 0, "source_uri"]),
        ("text not a string", {"chunks": [good | {"text": 12}], "source_type": "t"},
         ["body", "chunks", 0, "text"]),
        ("chunks not a list", {"chunks": good, "source_type": "t"}, ["body", "chunks"]),
        ("metadata not an object", {"chunks": [good | {"metadata": [1]}], "source_type": "t"},
         ["body", "chunks", 0, "metadata"]),
        ("missing source_type", {"chunks": [good]}, ["body", "source_type"]),
        ("unknown workspace", body(1) | {"workspace": "nope"}, ["body", "workspace"]),
        ("unknown field", body(1) | {"priority": 1}, ["body", "priority"]),
        ("duplicate chunk",
         {"chunks": [good, good | {"source_uri": "test://y"}], "source_type": "t"},
         ["body", "chunks"]),
        ("body not an object", [1, 2], ["body"]),
        ("NUL in text", {"chunks": [good | {"text": "fine\x00fine"}], "source_type": "t"},
         ["body", "chunks", 0, "text"]),
        ("NUL in source_uri", {"chunks": [good | {"source_uri": "\x00"}], "source_type": "t"},
         ["body", "chunks", 0, "source_uri"]),
        ("NUL in source_type", {"chunks": [good], "source_type": "t\x00"},
         ["body", "source_type"]),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "payload", "loc"), _bad_bodies(), ids=lambda v: v if isinstance(v, str) else ""
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    api: Any, redis_client: Any, pg_pool: Any, case: str, payload: Any, loc: list[Any]
) -> None:
    r = await api.post(URL, json=payload, headers=HEADERS)

    assert r.status_code == 422, (case, r.text)
    assert loc in [item["loc"] for item in r.json()["detail"]], r.text
    assert "fine" not in r.text
    assert "xxxx" not in r.text
    assert await _written(redis_client, pg_pool) == (0, 0, 0, 0)


async def test_duplicate_chunk_detail_names_both_chunks(api: Any) -> None:
    chunks = [{"text": f"t{i}", "source_uri": "u"} for i in range(3)] + [
        {"text": " t1 ", "source_uri": "v"}
    ]
    r = await api.post(URL, json={"chunks": chunks, "source_type": "t"}, headers=HEADERS)
    assert r.status_code == 422
    assert "chunks[3].text duplicates chunks[1].text" in r.text


async def test_nul_or_blank_text_is_named_in_words_not_as_a_pattern(api: Any) -> None:
    for text in ("a\x00b", "\x00", " \x00 "):
        chunk = {"text": text, "source_uri": "u"}
        r = await api.post(URL, json={"chunks": [chunk], "source_type": "t"}, headers=HEADERS)
        assert r.status_code == 422
        [item] = r.json()["detail"]
        assert item["loc"] == ["body", "chunks", 0, "text"]
        assert item["msg"] == "must hold a non-whitespace character and no NUL character"


async def test_invalid_json_is_422(api: Any, redis_client: Any, pg_pool: Any) -> None:
    r = await api.post(
        URL, content=b'{"chunks": [', headers=HEADERS | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].startswith("invalid JSON")
    assert await _written(redis_client, pg_pool) == (0, 0, 0, 0)


async def test_bad_idempotency_key_is_422(api: Any) -> None:
    r = await api.post(URL, json=body(1), headers=HEADERS | {"Idempotency-Key": "x" * 201})
    assert r.status_code == 422
    assert ["header", "Idempotency-Key"] in [i["loc"] for i in r.json()["detail"]]


async def test_body_over_the_limit_is_413_before_parsing(
    worker_settings: Any, redis_client: Any, pg_pool: Any
) -> None:
    from tests.support.api import api_settings

    payload = json.dumps(body(3)).encode()
    async with asgi_client(api_settings(worker_settings), max_body_bytes=len(payload) - 1) as api:
        declared = await api.post(URL, content=payload, headers=HEADERS)

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for i in range(0, len(payload), 16):
                yield payload[i : i + 16]

        streamed = await api.post(URL, content=chunked(), headers=HEADERS)
        fits = await api.post(URL, json=body(1), headers=HEADERS)

    assert declared.status_code == streamed.status_code == 413
    assert "larger than" in declared.json()["detail"]
    assert "larger than" in streamed.json()["detail"]
    assert fits.status_code == 202
    assert await _written(redis_client, pg_pool) == (1, 1, 1, 1)


async def test_every_workspace_is_accepted(api: Any, redis_client: Any, pg_pool: Any) -> None:
    from shield_orchestrator import keys

    for ws in keys.WORKSPACES:
        r = await api.post(URL, json=body(1) | {"workspace": ws}, headers=HEADERS)
        assert r.status_code == 202, r.text
        row = await pg_pool.fetchrow(
            "SELECT workspace FROM jobs WHERE job_id = $1", r.json()["job_id"]
        )
        assert row["workspace"] == ws
