"""GET /jobs: newest first, filters, cursor pagination, against real Redis and PostgreSQL.

Jobs are created through POST /lightrag/ingest-async; a job's status reaches PostgreSQL the way
the pool writes it (JobTracker.record, then the write-behind flush).

What is proved: pages are newest first and pagination is stable while jobs are being created
(every job listed exactly once); the status, kind, workspace and created_since filters; a
``limit`` above the maximum and a cursor from another query (or not a cursor) are 422s naming
the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import HEADERS, api_settings, asgi_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any, pg_pool: Any) -> AsyncIterator[Any]:
    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


async def _submit(api: Any, n: int = 1) -> str:
    chunks = [{"text": f"text {i}", "source_uri": f"test://{i}"} for i in range(n)]
    r = await api.post(
        "/lightrag/ingest-async", json={"chunks": chunks, "source_type": "t"}, headers=HEADERS
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


async def _page(api: Any, **params: Any) -> dict[str, Any]:
    r = await api.get("/jobs", params=params, headers=HEADERS)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_pages_are_newest_first_and_stable_while_jobs_are_created(api: Any) -> None:
    before = [await _submit(api) for _ in range(7)]
    seen: list[str] = []
    created_meanwhile: list[str] = []
    page = await _page(api, limit=3)
    while True:
        seen += [j["job_id"] for j in page["jobs"]]
        created_meanwhile.append(await _submit(api))  # newer than every cursor
        if page["next_cursor"] is None:
            break
        page = await _page(api, limit=3, cursor=page["next_cursor"])
    assert seen == before[::-1]  # each once, newest first, none of the new ones
    everything = await _page(api, limit=200)
    assert [j["job_id"] for j in everything["jobs"]] == (before + created_meanwhile)[::-1]
    assert everything["next_cursor"] is None
    created = [j["created_at"] for j in everything["jobs"]]
    assert created == sorted(created, reverse=True)


async def test_filters_status_kind_workspace_created_since(
    api: Any, redis_client: Any, pg_pool: Any
) -> None:
    from shield_orchestrator import keys
    from shield_orchestrator.services import redis_streams
    from shield_orchestrator.services.job_tracker import PROCESSED, JobTracker, Outcome

    done = await _submit(api, 2)
    queued = [await _submit(api) for _ in range(2)]
    await redis_streams.ensure_group(redis_client, keys.ingestion_stream(keys.WORKSPACES[0]))
    entries = await redis_streams.read_group(
        redis_client, keys.ingestion_stream(keys.WORKSPACES[0]), "t:1", 100, None
    )
    tracker = JobTracker(redis_client)
    await tracker.record(
        [Outcome(e, f["job_id"], f["chunk_id"], PROCESSED) for e, f in entries
         if f["job_id"] == done]
    )  # fmt: skip
    await tracker.flush(pg_pool)

    completed = await _page(api, status="completed")
    assert [j["job_id"] for j in completed["jobs"]] == [done]
    assert completed["jobs"][0]["percent_complete"] == 100.0
    assert [j["job_id"] for j in (await _page(api, status="queued"))["jobs"]] == queued[::-1]
    assert len((await _page(api, kind="ingest"))["jobs"]) == 3
    assert (await _page(api, kind="other"))["jobs"] == []
    assert len((await _page(api, workspace="default"))["jobs"]) == 3
    assert (await _page(api, workspace="nowhere"))["jobs"] == []
    since = (await _page(api))["jobs"][1]["created_at"]  # the middle job's creation
    assert [j["job_id"] for j in (await _page(api, created_since=since))["jobs"]] == queued[::-1]


async def test_bad_limit_and_cursors_are_422_naming_the_field(api: Any) -> None:
    for _ in range(3):
        await _submit(api)
    first = await _page(api, limit=1)
    assert first["next_cursor"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": first["next_cursor"], "status": "queued"}, "cursor"),  # another query
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "nope"}, "status"),
    ]
    for params, field in cases:
        r = await api.get("/jobs", params=params, headers=HEADERS)
        assert r.status_code == 422, (params, r.text)
        assert [e["loc"] for e in r.json()["detail"]] == [["query", field]], r.text
    # a cursor's 422 says why, in the shape of every validation error
    for params, msg in [
        (
            {"cursor": first["next_cursor"], "kind": "other"},
            "this cursor belongs to a query with other filters",
        ),
        ({"cursor": "not-a-cursor"}, "not a cursor of GET /jobs"),
    ]:
        r = await api.get("/jobs", params=params, headers=HEADERS)
        item = {"loc": ["query", "cursor"], "msg": msg, "type": "value_error"}
        assert r.json() == {"detail": [item]}, r.text
    # the same query goes on with it
    assert len((await _page(api, limit=1, cursor=first["next_cursor"]))["jobs"]) == 1
