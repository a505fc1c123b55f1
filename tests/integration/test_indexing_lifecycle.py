"""A repository's lifecycle through the API (issue 16): schedule, file cap, removal.

Real parts: the Temporal dev server (tests/support/temporal.py), Redis and PostgreSQL, a git
repository built in tmp_path, the indexer's Temporal worker (test_indexing_workflow's
``indexer`` fixture, on its own task queue), the API app in this loop pointed at that queue,
and a WorkerPool consuming the jobs (the noop engine, or the offline engine: the real LightRAG
code on PostgreSQL storages, for the removal).

What is proved: POST /repos with a schedule makes a Temporal Schedule (interval, overlap SKIP,
the forwarding action) that the SDK's ``trigger()`` fires into a real run of the repository's
own workflow id, and DELETE removes it; a commit over ``max_files`` indexes the first files in
path order and ends completed_with_errors naming the cap; DELETE answers 202 with one deletion
job after which LightRAG holds no document of the repository.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_engine_delete_documents import offline_engine
from tests.integration.test_indexing_workflow import Indexer, indexer
from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.pools import running_pool, wait_for
from tests.support.servers import PostgresServer, RedisServer
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["indexer", "temporal_srv"]  # fixtures, used by name


@pytest.fixture
async def api(
    worker_settings: Any, indexer: Indexer, temporal_srv: TemporalServer
) -> AsyncIterator[httpx.AsyncClient]:
    """The API, its index requests and schedules on the indexer fixture's task queue."""
    from shield_orchestrator.services.repositories import TemporalTarget

    target = TemporalTarget(temporal_srv.address, "default", indexer.task_queue)
    async with asgi_client(api_settings(worker_settings), target) as client:
        yield client


def workspace() -> str:
    from shield_orchestrator import keys

    return keys.WORKSPACES[0]


async def register(api: httpx.AsyncClient, ix: Indexer, **body: Any) -> dict[str, Any]:
    r = await api.post("/repos", json={"url": str(ix.repo_dir), "branch": "main", **body},
                       headers=HEADERS)  # fmt: skip
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def show(api: httpx.AsyncClient, repo_id: str) -> dict[str, Any]:
    r = await api.get(f"/repos/{repo_id}", headers=HEADERS)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def index_and_wait(api: httpx.AsyncClient, ix: Indexer, repo_id: str) -> Any:
    r = await api.post(f"/repos/{repo_id}/index", headers=HEADERS)
    assert r.status_code == 202, r.text
    from shield_orchestrator.indexing.workflow import IndexResult

    handle = ix.client.get_workflow_handle(r.json()["workflow_id"], run_id=r.json()["run_id"],
                                           result_type=IndexResult)  # fmt: skip
    return await handle.result()


async def test_a_schedule_triggers_the_repositorys_own_workflow(
    api: httpx.AsyncClient, indexer: Indexer, redis_srv: RedisServer
) -> None:
    from shield_orchestrator.indexing.workflow import IndexResult
    from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
    from temporalio.service import RPCError, RPCStatusCode

    ix = indexer
    repo = await register(api, ix, schedule="1h")
    assert repo["schedule_s"] == 3600
    schedule_id = f"repo-index-schedule:{repo['repo_id']}:main"
    handle = ix.client.get_schedule_handle(schedule_id)
    described = await handle.describe()
    assert [i.every.total_seconds() for i in described.schedule.spec.intervals] == [3600]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("RepoIndexingWorkflow", ix.task_queue)
    # the same registration again with another period and cap: the schedule follows
    again = await api.post("/repos", json={"url": str(ix.repo_dir), "branch": "main",
                                           "schedule": "15m", "max_files": 50},
                           headers=HEADERS)  # fmt: skip
    assert (again.status_code, again.json()["schedule_s"]) == (200, 900)
    described = await handle.describe()
    assert [i.every.total_seconds() for i in described.schedule.spec.intervals] == [900]
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    request = json.loads(action.args[0].data)
    assert (request["forward"], request["spec"]["max_files"]) == (True, 50)

    async with running_pool(redis_srv, db=ix.db, workspace=workspace()):
        await handle.trigger()
        own = ix.client.get_workflow_handle(f"repo-index:{repo['repo_id']}:main",
                                            result_type=IndexResult)  # fmt: skip

        async def indexed() -> bool:
            return (await show(api, repo["repo_id"]))["index"]["state"] == "indexed"

        await wait_for(indexed, timeout_s=120, what="the scheduled run")
        result = await own.result()
    assert [(r.outcome, r.jobs) for r in result.runs] == [("completed", 4)]
    shown = await show(api, repo["repo_id"])
    assert shown["index"]["indexed_files"] == 4

    removed = await api.delete(f"/repos/{repo['repo_id']}", headers=HEADERS)
    assert removed.status_code == 202, removed.text
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_a_commit_over_max_files_indexes_the_first_files_and_names_the_cap(
    api: httpx.AsyncClient, indexer: Indexer, redis_srv: RedisServer
) -> None:
    from shield_orchestrator.indexing import runs

    ix = indexer
    repo = await register(api, ix, max_files=2)
    async with running_pool(redis_srv, db=ix.db, workspace=workspace()):
        (run,) = (await index_and_wait(api, ix, repo["repo_id"])).runs
    assert (run.outcome, run.jobs) == ("completed_with_errors", 2)
    # INDEXABLE in path order: README.md, pkg/__init__.py, pkg/mod.py, src/app.js
    assert set(await runs.manifest(ix.db, repo["repo_id"], "main")) == {
        "README.md", "pkg/__init__.py"}  # fmt: skip
    index = (await show(api, repo["repo_id"]))["index"]
    assert index["state"] == "completed_with_errors"
    assert index["last_run"]["skipped"]["over_max_files"] == 2
    assert index["last_error"].startswith("2 file(s) not indexed")
    assert "raise max_files" in index["last_error"]
    assert index["consecutive_failures"] == 0  # a cap is no failure: no backoff


async def test_delete_takes_every_document_of_the_repository_out_of_lightrag(
    api: httpx.AsyncClient,
    indexer: Indexer,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    tmp_path: Path,
) -> None:
    """Indexed twice (the second run leaves pending nothing), then DELETE: one job of
    delete_document entries; once it completed LightRAG's doc set of the workspace is empty
    (this repository is its only source) and the registration is gone."""
    from shield_orchestrator.services.job_status import fetch_job

    ix = indexer
    ws = workspace()
    engine = offline_engine(tmp_path, postgres_srv, pg_database, workspace=ws)
    repo = await register(api, ix)
    async with running_pool(redis_srv, engine=engine, db=ix.db, workspace=ws, timeout_s=60.0):
        (run,) = (await index_and_wait(api, ix, repo["repo_id"])).runs
        assert (run.outcome, run.jobs) == ("completed", 4)
        assert len(await lightrag_docs_of(ix, ws)) >= 4
        removed = await api.delete(f"/repos/{repo['repo_id']}", headers=HEADERS)
        assert removed.status_code == 202, removed.text
        out = removed.json()
        assert (out["files"], out["removed"]) == (4, True)
        assert out["documents"] == len(await lightrag_docs_of(ix, ws))
        job_id = out["job_id"]

        async def done() -> bool:
            view = await fetch_job(ix.activities.redis, ix.db, job_id)
            return view is not None and view.status.is_terminal

        await wait_for(done, timeout_s=60, what="the deletion job")
        view = await fetch_job(ix.activities.redis, ix.db, job_id)
        assert view is not None
        assert view.status.value == "completed"
    assert await lightrag_docs_of(ix, ws) == set()
    assert (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).status_code == 404
    kind = await ix.db.fetchval("SELECT kind FROM jobs WHERE job_id = $1::uuid", job_id)
    assert kind == "delete"


async def lightrag_docs_of(ix: Indexer, ws: str) -> set[str]:
    """Every document of the workspace in LightRAG's doc status table (PostgreSQL storage)."""
    rows = await ix.db.fetch("SELECT id FROM lightrag_doc_status WHERE workspace = $1", ws)
    return {r["id"] for r in rows}
