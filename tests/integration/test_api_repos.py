"""Repositories as API objects (issue 16): POST/GET/DELETE /repos, POST /repos/{id}/index.

Real parts: Redis and PostgreSQL (conftest), the API app in this loop (its lifespan), the
Temporal dev server of tests/support/temporal.py. No indexer polls the test's task queue, so a
started workflow stays running: the second trigger meets an active run.

What is proved: registration (201, then 200 with the same id for the same url, branch and
workspace), 422s naming the field for credentials in a URL, other schemes, a relative path, an
unknown workspace (listing the known ones), a credential value in credential_ref and unknown
fields; listing by pages (a cursor not made by GET /repos, or made for another workspace
filter: a 422 naming it); GET of the indexing state the indexer's tables hold (indexed commit,
consecutive failures, last error, the last run's files by change, state and skip reason); 404
for an unknown id; index -> 202 with the workflow id, the workflow running in Temporal with the
repository's spec, a second trigger while it runs -> the same ids; DELETE unregisters (202, the
deletion job of the documents: tests/integration/test_indexing_lifecycle.py runs it); with
Temporal unreachable the API still starts, indexing is a 503 naming the reason and
POST /lightrag/ingest-async is still a 202. Backoff and quarantine as the API sees them (429
with Retry-After, 409, both naming force; force passes), a schedule's 422s.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.servers import LOOPBACK, free_port
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["temporal_srv"]  # the session fixture, used by name


@pytest.fixture
def task_queue() -> str:
    return f"test-repos-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def api(
    worker_settings: Any, pg_pool: Any, temporal_srv: TemporalServer, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    from shield_orchestrator.services.repositories import TemporalTarget

    target = TemporalTarget(temporal_srv.address, "default", task_queue)
    async with asgi_client(api_settings(worker_settings), target) as client:
        yield client


def workspace() -> str:
    from shield_orchestrator import keys

    return keys.WORKSPACES[0]


async def register(api: httpx.AsyncClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    body = {"url": "https://git.example.invalid/team/app.git", "branch": "main", **body}
    r = await api.post("/repos", json=body, headers=HEADERS)
    assert r.status_code == expect, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_register_is_idempotent_by_url_branch_workspace(api: httpx.AsyncClient) -> None:
    first = await register(api, include=["src/**"], exclude=["vendor/**"], max_file_bytes=4096,
                           max_files=10, credential_ref="REPO_CREDENTIAL_APP")  # fmt: skip
    assert first["workspace"] == workspace()
    assert first["workflow_id"] == f"repo-index:{first['repo_id']}:main"
    assert (first["include"], first["exclude"]) == (["src/**"], ["vendor/**"])
    assert (first["max_file_bytes"], first["max_files"]) == (4096, 10)
    assert first["credential_ref"] == "REPO_CREDENTIAL_APP"
    again = await register(api, expect=200)  # same triple, other options: the existing one
    assert again == first
    other_branch = await register(api, branch="release/1.2")
    assert other_branch["repo_id"] != first["repo_id"]
    ssh = await register(api, url="git@git.example.invalid:team/app.git")
    ssh_url = await register(api, url="ssh://git@git.example.invalid/team/app.git")
    local = await register(api, url="/srv/git/app.git")
    ids = {first["repo_id"], other_branch["repo_id"], ssh["repo_id"], ssh_url["repo_id"],
           local["repo_id"]}  # fmt: skip
    listed: list[str] = []
    page = (await api.get("/repos", params={"limit": 2}, headers=HEADERS)).json()
    while True:
        listed += [r["repo_id"] for r in page["repos"]]
        if page["next_cursor"] is None:
            break
        r = await api.get("/repos", params={"limit": 2, "cursor": page["next_cursor"]},
                          headers=HEADERS)  # fmt: skip
        assert r.status_code == 200, r.text
        page = r.json()
    assert listed[0] == first["repo_id"]
    assert set(listed) == ids
    assert len(listed) == len(ids)


async def test_bad_cursors_are_422_naming_the_cursor(api: httpx.AsyncClient) -> None:
    for branch in ("main", "dev"):
        await register(api, branch=branch)
    page = (await api.get("/repos", params={"limit": 1}, headers=HEADERS)).json()
    assert page["next_cursor"]
    for params, msg in [
        (
            {"cursor": page["next_cursor"], "workspace": workspace()},
            "this cursor belongs to a query with another workspace filter",
        ),
        ({"cursor": "not-a-cursor"}, "not a cursor of GET /repos"),
    ]:
        r = await api.get("/repos", params=params, headers=HEADERS)
        assert r.status_code == 422, r.text
        item = {"loc": ["query", "cursor"], "msg": msg, "type": "value_error"}
        assert r.json() == {"detail": [item]}, r.text
    params = {"limit": 1, "cursor": page["next_cursor"]}
    r = await api.get("/repos", params=params, headers=HEADERS)
    assert [x["branch"] for x in r.json()["repos"]] == ["dev"]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"url": "https://user:s3cret@git.example.invalid/a.git"}, "url", "credential_ref"),
        ({"url": "https://ghp_token@git.example.invalid/a.git"}, "url", "credential_ref"),
        ({"url": "ssh://git:s3cret@git.example.invalid/a.git"}, "url", "credential_ref"),
        ({"url": "https://git.example.invalid/a.git?private_token=x"}, "url", "credential_ref"),
        ({"url": "http://git.example.invalid/a.git"}, "url", "unsupported URL scheme 'http'"),
        ({"url": "ftp://git.example.invalid/a.git"}, "url", "unsupported URL scheme 'ftp'"),
        ({"url": "repos/app"}, "url", "must be absolute"),
        ({"workspace": "nope"}, "workspace", "known: "),
        ({"branch": "../main"}, "branch", "branch name"),
        ({"branch": ""}, "branch", "at least 1"),
        ({"credential_ref": "ghp_abcdef0123"}, "credential_ref", "pattern"),
        ({"max_file_bytes": 0}, "max_file_bytes", "greater than"),
        ({"token": "x"}, "token", "Extra inputs"),
    ],
)
async def test_bad_registrations_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, needle: str
) -> None:
    full = {"url": "https://git.example.invalid/a.git", "branch": "main", **body}
    r = await api.post("/repos", json=full, headers=HEADERS)
    assert r.status_code == 422, r.text
    items = [i for i in r.json()["detail"] if i["loc"][-1] == field]
    assert items, r.text
    assert needle in items[0]["msg"], r.text
    assert "s3cret" not in r.text
    assert "ghp_token" not in r.text
    assert (await api.get("/repos", headers=HEADERS)).json()["repos"] == []


async def test_unknown_repository_is_404(api: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    for method, path in [("GET", f"/repos/{unknown}"), ("DELETE", f"/repos/{unknown}"),
                         ("POST", f"/repos/{unknown}/index")]:  # fmt: skip
        r = await api.request(method, path, headers=HEADERS)
        assert r.status_code == 404, r.text
        assert r.json() == {"detail": f"no repository {unknown} (never registered, or removed)"}
    assert (await api.get("/repos", headers={})).status_code == 401  # the key, before anything


async def test_show_reads_the_indexers_tables(api: httpx.AsyncClient, pg_pool: Any) -> None:
    from shield_orchestrator.database.queries import query

    repo = await register(api)
    shown = (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).json()
    assert shown["index"]["state"] == "never_indexed"
    assert shown["index"]["last_run"] is None
    assert shown["index"]["consecutive_failures"] == 0
    key = (repo["repo_id"], "main")
    # what indexing/runs.py and health.py write: a completed run, then two failed ones
    from shield_orchestrator.indexing import health

    done, failed1, failed2 = (str(uuid.uuid4()) for _ in range(3))
    await pg_pool.execute(query("ensure_index_state"), *key)
    await pg_pool.execute(query("insert_index_run"), done, *key, workspace(), None, "c1",
                          json.dumps({}), 0)  # fmt: skip
    await pg_pool.execute(query("finish_index_run"), done, "completed", None)
    await pg_pool.execute(query("advance_indexed_commit"), *key, None, "c1")
    await pg_pool.execute("INSERT INTO repo_files VALUES ($1, $2, 'a.py', 'b1'), "
                          "($1, $2, 'b.py', 'b2')", *key)  # fmt: skip
    for run_id, error in ((failed1, "first failure"), (failed2, "clone failed: not found")):
        await pg_pool.execute(query("insert_index_run"), run_id, *key, workspace(), "c1", "c2",
                              json.dumps({"binary": 2, "secret": 1}), 2)  # fmt: skip
        await pg_pool.execute(
            query("insert_run_files"), run_id, ["a.py", "c.py", "d.py"],
            ["modified", "added", "added"], ["b3", "b4", "b5"], [None] * 3, ["b1", None, None],
        )  # fmt: skip
        await pg_pool.execute("UPDATE repo_run_files SET state = 'failed' WHERE run_id = $1 "
                              "AND path = 'c.py'", run_id)  # fmt: skip
        await pg_pool.execute(query("finish_index_run"), run_id, "failed", error)
        await health.record_failure(pg_pool, *key, error)
    r = await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)
    assert r.status_code == 200, r.text
    index = r.json()["index"]
    assert index["state"] == "failed"
    assert index["indexed_commit"] == "c1"
    assert index["indexed_files"] == 2
    assert index["runs"] == 3
    assert index["consecutive_failures"] == 2
    assert index["last_error"] == "clone failed: not found"
    assert index["next_eligible_at"] is not None
    assert index["quarantined_at"] is None
    last = index["last_run"]
    assert (last["run_id"], last["status"], last["base_commit"], last["commit"]) == (
        failed2, "failed", "c1", "c2")  # fmt: skip
    assert last["changes"] == {"added": 2, "modified": 1}
    assert last["files"] == {"pending": 2, "failed": 1}
    assert last["skipped"] == {"binary": 2, "secret": 1}
    assert last["unchanged"] == 2
    removed = await api.delete(f"/repos/{repo['repo_id']}", headers=HEADERS)
    assert removed.status_code == 202, removed.text
    # the two manifest rows name no ingestion job: no document, so no deletion job
    assert (removed.json()["job_id"], removed.json()["files"]) == (None, 2)
    assert (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).status_code == 404
    for table in ("repo_files", "repo_index_runs", "repo_index_state"):
        count = f"SELECT count(*) FROM {table} WHERE repo = $1"  # noqa: S608 (our names)
        assert await pg_pool.fetchval(count, key[0]) == 0, table


async def test_index_starts_the_workflow_and_a_second_trigger_gets_the_same_ids(
    api: httpx.AsyncClient, temporal_srv: TemporalServer, task_queue: str
) -> None:
    from temporalio.client import Client, WorkflowExecutionStatus

    repo = await register(api, url="/srv/git/app.git", exclude=["*.lock"], max_file_bytes=2048)
    path = f"/repos/{repo['repo_id']}/index"
    first = await api.post(path, headers=HEADERS)
    assert first.status_code == 202, first.text
    out = first.json()
    assert out["workflow_id"] == f"repo-index:{repo['repo_id']}:main"
    assert out["run_id"]
    assert out["force"] is False
    assert out["status_url"] == f"/repos/{repo['repo_id']}"
    client = await Client.connect(temporal_srv.address)
    handle = client.get_workflow_handle(out["workflow_id"])
    try:
        described = await handle.describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert described.run_id == out["run_id"]
        assert described.task_queue == task_queue
        assert described.workflow_type == "RepoIndexingWorkflow"
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        spec = json.loads(started.input.payloads[0].data)["spec"]
        assert spec["repo"] == repo["repo_id"]
        assert (spec["url"], spec["branch"]) == ("/srv/git/app.git", "main")
        assert (spec["exclude"], spec["max_file_bytes"]) == (["*.lock"], 2048)
        second = await api.post(path, json={"force": True}, headers=HEADERS)
        assert second.status_code == 202, second.text
        assert (second.json()["workflow_id"], second.json()["run_id"]) == (
            out["workflow_id"], out["run_id"])  # fmt: skip
        assert second.json()["force"] is True
        bad = await api.post(path, json={"force": "later"}, headers=HEADERS)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][-1] == "force"
    finally:
        await handle.terminate(reason="test done")


async def test_temporal_down_is_503_for_indexing_only(worker_settings: Any, pg_pool: Any) -> None:
    from shield_orchestrator.services.repositories import TemporalTarget

    address = f"{LOOPBACK}:{free_port()}"  # nothing listens there
    target = TemporalTarget(address, "default", "repo-indexing")
    async with asgi_client(api_settings(worker_settings), target) as api:
        repo = await register(api)
        r = await api.post(f"/repos/{repo['repo_id']}/index", headers=HEADERS)
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith(f"temporal unavailable at {address}")
        assert "refused" in r.json()["detail"].lower()
        assert r.headers["Retry-After"] == "5"
        chunks = [{"text": "still ingesting", "source_uri": "test://1"}]
        ingest = await api.post("/lightrag/ingest-async", json={"chunks": chunks,
                                "source_type": "t"}, headers=HEADERS)  # fmt: skip
        assert ingest.status_code == 202, ingest.text
        assert (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).status_code == 200


async def test_backoff_and_quarantine_refuse_unforced_requests(
    api: httpx.AsyncClient, pg_pool: Any, temporal_srv: TemporalServer
) -> None:
    """After a failure (what the workflow's record_failure writes) a non-forced request is a
    429 with Retry-After naming the time and force; after the fifth a 409 naming force; a
    forced one is a 202 either way, and a success lifts both."""
    from shield_orchestrator.indexing import health
    from temporalio.client import Client

    repo = await register(api, url="/srv/git/app.git")
    key = (repo["repo_id"], "main")
    path = f"/repos/{repo['repo_id']}/index"
    await health.record_failure(pg_pool, *key, "clone_repo: RepoNotFound: no branch 'main'")
    shown = (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).json()["index"]
    assert (shown["state"], shown["consecutive_failures"]) == ("failed", 1)
    assert shown["last_error"] == "clone_repo: RepoNotFound: no branch 'main'"
    r = await api.post(path, headers=HEADERS)
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "force=true" in r.json()["detail"]
    assert shown["next_eligible_at"][:19] in r.json()["detail"]
    for _ in range(4):
        await health.record_failure(pg_pool, *key, "clone_repo: GitError: unreachable")
    shown = (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).json()["index"]
    assert (shown["state"], shown["consecutive_failures"]) == ("quarantined", 5)
    assert shown["quarantined_at"] is not None
    r = await api.post(path, json={"force": False}, headers=HEADERS)
    assert r.status_code == 409, r.text
    assert "quarantined after 5" in r.json()["detail"]
    assert "force=true" in r.json()["detail"]
    forced = await api.post(path, json={"force": True}, headers=HEADERS)
    assert forced.status_code == 202, forced.text
    client = await Client.connect(temporal_srv.address)
    await client.get_workflow_handle(forced.json()["workflow_id"]).terminate(reason="test done")
    await health.record_success(pg_pool, *key)
    shown = (await api.get(f"/repos/{repo['repo_id']}", headers=HEADERS)).json()["index"]
    assert (shown["state"], shown["consecutive_failures"]) == ("never_indexed", 0)
    assert (shown["next_eligible_at"], shown["quarantined_at"]) == (None, None)
    assert shown["last_error"] == "clone_repo: GitError: unreachable"  # kept as history


@pytest.mark.parametrize(
    ("schedule", "needle"),
    [("30s", "60 s"), ("every hour", "not a period"), ("31d", "30d at most"), ("", "period")],
)
async def test_bad_schedules_are_422_naming_the_field(
    api: httpx.AsyncClient, schedule: str, needle: str
) -> None:
    r = await api.post("/repos", json={"url": "/srv/git/a.git", "branch": "main",
                                       "schedule": schedule}, headers=HEADERS)  # fmt: skip
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"][-1] == "schedule"
    assert needle in item["msg"], r.text
