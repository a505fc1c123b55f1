"""The repository indexing counters of /metrics (issue 16), read from PostgreSQL at each scrape.

Real PostgreSQL and Redis (conftest), the API app through ASGITransport; the run rows are
written by the indexer's own functions (indexing/runs.py: record_plan, set_file_job, publish,
record_deletions, mark_deleted, fail_run), as its activities write them. Three runs of one
branch: the first completes with errors (a file indexed, one empty, one failed, two skipped),
the second replaces a file (its 3 documents deleted) and fails, the third is still planned.
/metrics then counts the runs by outcome, the files by outcome and reason, the documents
deleted and the finished runs' durations; a second API app (another process's view) reads
the same values; with PostgreSQL unreachable a scrape still answers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

REPO, BRANCH, WORKSPACE = "repo-metrics", "main", "code"
SHA = {n: f"{n:040x}" for n in range(1, 10)}


@pytest.fixture
async def api(worker_settings: Any, redis_client: Any, pg_pool: Any) -> AsyncIterator[Any]:
    async with asgi_client(api_settings(worker_settings)) as client:
        yield client


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of every shield_index_* sample."""
    r = await api.get("/metrics", headers=HEADERS)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        if family.name.startswith("shield_index_")
        for s in family.samples
    }


def plan(commit: str, manifest: dict[str, str], skipped: dict[str, str], **changes: Any) -> Any:
    from shield_orchestrator.indexing.plan import Changes, Plan, Skipped, SkipReason

    return Plan(commit, manifest, Changes(**changes),
                tuple(Skipped(p, SkipReason(r), SHA[9]) for p, r in skipped.items()))  # fmt: skip


async def new_job(db: Any, chunks: int) -> str:
    job_id = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO jobs (job_id, workspace, status, chunks_total, chunks_processed) "
        "VALUES ($1::uuid, $2, 'completed', $3, $3)", job_id, WORKSPACE, chunks,
    )  # fmt: skip
    return job_id


async def three_runs(db: Any) -> None:
    from shield_orchestrator.indexing import runs

    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    tree = {"a.py": SHA[1], "b.txt": SHA[2], "c.go": SHA[3]}
    await runs.record_plan(
        db, first, repo=REPO, branch=BRANCH, workspace=WORKSPACE, base_commit=None,
        plan=plan("c1", tree, {".env": "secret", "logo.png": "binary"}, added=tuple(tree)),
        previous={},
    )  # fmt: skip
    await runs.set_file_job(db, first, "a.py", await new_job(db, 3), "completed")
    await runs.set_file_job(db, first, "b.txt", None, "empty")
    await runs.set_file_job(db, first, "c.go", await new_job(db, 2), "failed")
    # the run planned 100 s before it published: its duration lies in (60, 300]
    await db.execute("UPDATE repo_index_runs SET created_at = now() - interval '100 seconds' "
                     "WHERE run_id = $1::uuid", first)  # fmt: skip
    assert await runs.publish(db, first) == "completed_with_errors"

    previous = await runs.manifest(db, REPO, BRANCH)
    await runs.record_plan(
        db, second, repo=REPO, branch=BRANCH, workspace=WORKSPACE, base_commit="c1",
        plan=plan("c2", {**previous, "a.py": SHA[4]}, {".env": "secret"}, modified=("a.py",)),
        previous=previous,
    )  # fmt: skip
    assert await runs.record_deletions(db, second) == 1
    await runs.mark_deleted(db, REPO, BRANCH, await runs.pending_deletions(db, REPO, BRANCH))
    assert await runs.fail_run(db, second, "persist_kg: boom") is True

    await runs.record_plan(
        db, third, repo=REPO, branch=BRANCH, workspace=WORKSPACE, base_commit="c1",
        plan=plan("c3", previous, {}, added=()), previous=previous,
    )  # fmt: skip


def runs_of(m: dict[Any, float], outcome: str) -> float:
    return m[("shield_index_runs_total", (("outcome", outcome),))]


def bucket(m: dict[Any, float], outcome: str, le: str) -> float:
    return m[("shield_index_run_duration_seconds_bucket", (("le", le), ("outcome", outcome)))]


async def test_indexing_counters_come_from_the_run_rows(
    api: httpx.AsyncClient, pg_pool: Any, worker_settings: Any
) -> None:
    before = await scrape(api)
    assert before[("shield_index_documents_deleted_total", ())] == 0
    assert not [k for k in before if k[0] == "shield_index_runs_total"]

    await three_runs(pg_pool)
    m = await scrape(api)
    assert runs_of(m, "completed_with_errors") == 1
    assert runs_of(m, "failed") == 1
    assert runs_of(m, "planned") == 1
    files = {k[1]: v for k, v in m.items() if k[0] == "shield_index_files_total"}
    assert files == {  # the second run's a.py is still pending: no outcome yet
        (("outcome", "indexed"), ("reason", "completed")): 1,
        (("outcome", "indexed"), ("reason", "empty")): 1,
        (("outcome", "failed"), ("reason", "failed")): 1,
        (("outcome", "skipped"), ("reason", "secret")): 2,  # planned by two runs
        (("outcome", "skipped"), ("reason", "binary")): 1,
    }
    assert m[("shield_index_documents_deleted_total", ())] == 3  # the old a.py's chunks
    assert bucket(m, "completed_with_errors", "60") == 0
    assert bucket(m, "completed_with_errors", "300") == 1
    assert bucket(m, "completed_with_errors", "+Inf") == 1
    assert bucket(m, "failed", "1") == 1  # failed as soon as it planned
    assert m[("shield_index_run_duration_seconds_count", (("outcome", "failed"),))] == 1
    total = m[("shield_index_run_duration_seconds_sum", (("outcome", "completed_with_errors"),))]
    assert 100 <= total < 300
    assert ("shield_index_run_duration_seconds_count", (("outcome", "planned"),)) not in m

    # another API process reads the same values: nothing is counted in a process
    async with asgi_client(api_settings(worker_settings)) as other:
        assert await scrape(other) == m


async def test_a_scrape_without_postgresql_still_answers(
    worker_settings: Any, redis_client: Any
) -> None:
    """No PostgreSQL (a free port): /metrics is a 200 with the request counters, and no
    indexing family (never a 0 that would read as a counter reset)."""
    settings = api_settings(worker_settings, postgres_port=free_port())
    async with asgi_client(settings) as api:
        r = await api.get("/metrics", headers=HEADERS)
    assert r.status_code == 200, r.text
    assert "shield_api_requests_total" in r.text
    assert "shield_index_runs_total" not in r.text


async def test_quarantine_and_failures_of_registered_repositories(
    api: httpx.AsyncClient, pg_pool: Any
) -> None:
    """The alerts' gauges: a repository quarantined after 5 failed runs, another with 2; a
    state row left by an unregistered repository counts for neither."""
    from shield_orchestrator import keys
    from shield_orchestrator.indexing import health
    from shield_orchestrator.services.repositories import NewRepository, register

    def new(name: str) -> Any:
        return NewRepository(f"/srv/git/{name}.git", "main", keys.WORKSPACES[0])

    before = await scrape(api)
    assert before[("shield_index_repositories_quarantined", ())] == 0
    assert before[("shield_index_consecutive_failures_max", ())] == 0
    (bad, _), (flaky, _) = [await register(pg_pool, new(n)) for n in ("bad", "flaky")]
    for repo_id, failures in ((bad.repo_id, 5), (flaky.repo_id, 2), (str(uuid.uuid4()), 7)):
        for _ in range(failures):  # the last: no registration (removed, or never)
            await health.record_failure(pg_pool, repo_id, "main", "fetch: not found")
    m = await scrape(api)
    assert m[("shield_index_repositories_quarantined", ())] == 1
    assert m[("shield_index_consecutive_failures_max", ())] == 5
    await health.record_success(pg_pool, bad.repo_id, "main")
    m = await scrape(api)
    assert m[("shield_index_repositories_quarantined", ())] == 0
    assert m[("shield_index_consecutive_failures_max", ())] == 2
