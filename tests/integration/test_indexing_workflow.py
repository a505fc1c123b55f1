"""The repository-indexing workflow end to end (issue 16), on a real Temporal dev server.

Real parts: the dev server (tests/support/temporal.py), Redis and PostgreSQL (conftest), a
git repository built in tmp_path (read through the indexer's own mirror), the indexer's
Temporal worker in this event loop, and a WorkerPool with the noop engine consuming the
ingestion jobs that ``persist_kg`` creates through ``JobRegistry.create`` (and the deletion
jobs of ``cleanup_stale_kg_nodes``); the last test runs the pool with the offline engine (the
real LightRAG code, PostgreSQL storages) and reads LightRAG's own storages.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_engine_delete_documents import (
    offline_engine,
    stored,
)
from tests.support.pools import running_pool, wait_for
from tests.support.procs import worker_env
from tests.support.servers import PostgresServer, RedisServer
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["temporal_srv"]  # the session fixture, used by name

FILES = {
    "pkg/__init__.py": "from pkg.mod import Store\n",
    "pkg/mod.py": (
        "import os\n\n\nclass Store:\n    def get(self, key):\n        return os.environ[key]\n"
        "\n\ndef helper(x):\n    return x * 2\n"
    ),
    "src/app.js": "export function greet(name) {\n  return `hi ${name}`;\n}\n",
    "README.md": "# Demo\n\nA repository to index.\n",
    ".env": "TOKEN=not-indexed\n",  # skipped: secret
    "data.bin": "\0\1\2binary",  # skipped: binary
}
INDEXABLE = {"pkg/__init__.py", "pkg/mod.py", "src/app.js", "README.md"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def commit_files(repo: Path, files: dict[str, str | None], message: str) -> str:
    """Write (None: delete) the files, commit them all; the new commit's sha."""
    for path, text in files.items():
        target = repo / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Indexer:
    client: Any
    spec: Any
    task_queue: str
    db: Any
    repo_dir: Path
    activities: Any

    async def trigger(self, **kwargs: Any) -> Any:
        from shield_orchestrator.indexing.workflow import trigger_index

        return await trigger_index(self.client, self.spec, task_queue=self.task_queue, **kwargs)

    async def jobs(self) -> dict[str, str]:
        """idempotency key -> status of every job the indexer created for this repository
        (the status as the services read it: the Redis hash first, PostgreSQL lags behind)."""
        from shield_orchestrator.services.job_status import fetch_job

        rows = await self.db.fetch(
            "SELECT idempotency_key, job_id FROM jobs WHERE idempotency_key LIKE 'repo-index:%'"
        )
        out = {}
        for r in rows:
            view = await fetch_job(self.activities.redis, self.db, str(r["job_id"]))
            out[r["idempotency_key"]] = "" if view is None else view.status.value
        return out

    async def run_paths(self, run_id: str) -> dict[str, str]:
        rows = await self.db.fetch(
            "SELECT path, change FROM repo_run_files WHERE run_id = $1::uuid", run_id
        )
        return {r["path"]: r["change"] for r in rows}


@pytest.fixture
async def indexer(
    temporal_srv: TemporalServer, pg_pool: Any, redis_client: Any, tmp_path: Path
) -> AsyncIterator[Indexer]:
    """A git repository with FILES, and a running indexer worker on its own task queue."""
    from shield_orchestrator.indexing.activities import IndexerConfig, IndexingActivities
    from shield_orchestrator.indexing.worker import build_worker
    from shield_orchestrator.indexing.workflow import RepoSpec
    from temporalio.client import Client

    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", "-b", "main")
    git(repo_dir, "config", "user.email", "t@example.invalid")
    git(repo_dir, "config", "user.name", "t")
    commit_files(repo_dir, dict(FILES), "first")
    client = await Client.connect(temporal_srv.address)
    config = IndexerConfig(cache_dir=tmp_path / "mirrors", heartbeat_every_s=0.5, job_poll_s=0.05)
    activities = IndexingActivities(redis_client, pg_pool, config)
    task_queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = build_worker(client, activities, task_queue=task_queue, graceful_shutdown_s=5)
    spec = RepoSpec(repo=f"r{uuid.uuid4().hex[:8]}", url=str(repo_dir), branch="main",
                    workspace="code")  # fmt: skip
    async with worker:
        yield Indexer(client, spec, task_queue, pg_pool, repo_dir, activities)


async def indexed_commit(ix: Indexer) -> str | None:
    from shield_orchestrator.indexing import runs

    return await runs.indexed_commit(ix.db, ix.spec.repo, ix.spec.branch)


async def test_first_run_indexes_every_file_then_only_the_changes(
    indexer: Indexer, redis_srv: RedisServer
) -> None:
    from shield_orchestrator.indexing import runs

    ix = indexer
    first = git(ix.repo_dir, "rev-parse", "HEAD")
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace) as pool:
        result = await (await ix.trigger()).result()
        (run,) = result.runs
        assert (run.outcome, run.commit, run.jobs, run.failed) == ("completed", first, 4, 0)
        assert set(await runs.manifest(ix.db, ix.spec.repo, "main")) == INDEXABLE
        jobs = await ix.jobs()
        assert sorted(jobs) == sorted(f"repo-index:{run.run_id}:{p}" for p in INDEXABLE)
        assert set(jobs.values()) == {"completed"}
        assert await indexed_commit(ix) == first
        assert (run.deleted, run.deletions_pending) == (0, 0)
        old_docs = {p: await doc_ids(ix, f"repo-index:{run.run_id}:{p}")
                    for p in ("pkg/mod.py", "README.md", "src/app.js")}  # fmt: skip

        second = commit_files(
            ix.repo_dir,
            {
                "pkg/mod.py": FILES["pkg/mod.py"] + "\n\ndef added(y):\n    return y\n",
                "README.md": None,
                "docs/guide.md": "# Guide\n\nNew prose.\n",
                "src/app.js": None,
                "src/main.js": FILES["src/app.js"],  # a rename: same blob, new path
            },
            "second",
        )
        result = await (await ix.trigger()).result()
        (run2,) = result.runs
        assert (run2.outcome, run2.commit, run2.changed, run2.jobs) == ("completed", second, 4, 3)
        assert await ix.run_paths(str(run2.run_id)) == {
            "pkg/mod.py": "modified",
            "README.md": "removed",
            "docs/guide.md": "added",
            "src/main.js": "renamed",
        }
        prefix = f"repo-index:{run2.run_id}:"
        new_jobs = {k for k in await ix.jobs() if k.startswith(prefix) and ":delete:" not in k}
        assert new_jobs == {
            f"repo-index:{run2.run_id}:{p}" for p in ("pkg/mod.py", "docs/guide.md", "src/main.js")
        }
        # The replaced and removed documents went through the pool as one deletion job, one
        # delete_document entry per file naming its documents, before the new ones.
        assert (run2.deleted, run2.deletions_pending) == (3, 0)
        deletions = await ix.db.fetch(
            "SELECT path, state FROM repo_doc_deletions WHERE repo = $1", ix.spec.repo
        )
        assert {(r["path"], r["state"]) for r in deletions} == {
            ("pkg/mod.py", "deleted"), ("README.md", "deleted"), ("src/app.js", "deleted"),
        }  # fmt: skip
        engine = pool.engine
        assert set(engine.deletions) == {d for ids in old_docs.values() for d in ids}
        assert set(engine.deletions.values()) == {1}
        (kind,) = await ix.db.fetch(
            "SELECT kind, status FROM jobs WHERE idempotency_key LIKE $1",
            f"repo-index:{run2.run_id}:delete:%",
        )
        assert kind["kind"] == "delete"
        assert set(await runs.manifest(ix.db, ix.spec.repo, "main")) == {
            "pkg/__init__.py", "pkg/mod.py", "docs/guide.md", "src/main.js",
        }  # fmt: skip
        assert await indexed_commit(ix) == second

        # Nothing moved: the check activity says so, no run and no job.
        result = await (await ix.trigger()).result()
        assert [(r.run_id, r.outcome) for r in result.runs] == [(None, "up_to_date")]
        assert len(await ix.jobs()) == 8  # 4 + 3 ingestion jobs, 1 deletion job


async def doc_ids(ix: Indexer, idempotency_key: str) -> list[str]:
    """The documents an ingestion job made: one per chunk (messages.chunk_document_id)."""
    from shield_orchestrator.services.messages import chunk_document_id

    row = await ix.db.fetchrow(
        "SELECT job_id, chunks_total FROM jobs WHERE idempotency_key = $1", idempotency_key
    )
    job = str(row["job_id"])
    return [chunk_document_id(job, f"c{n:06d}") for n in range(1, row["chunks_total"] + 1)]


async def test_removed_and_modified_files_leave_the_lightrag_graph(
    indexer: Indexer,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    tmp_path: Path,
) -> None:
    """With the real LightRAG code (offline engine, PostgreSQL storages): a removed file's
    documents and a modified file's old documents are deleted through the pool before the new
    ones are ingested, and LightRAG's document set equals the manifest's after each run."""
    ix = indexer
    engine = offline_engine(tmp_path, postgres_srv, pg_database, workspace=ix.spec.workspace)
    async with running_pool(
        redis_srv, engine=engine, db=ix.db, workspace=ix.spec.workspace, timeout_s=60.0
    ):
        (run,) = (await (await ix.trigger()).result()).runs
        assert (run.outcome, run.jobs, run.failed) == ("completed", 4, 0)
        assert await lightrag_docs(ix) == await manifest_docs(ix)
        old = {p: await doc_ids(ix, f"repo-index:{run.run_id}:{p}")
               for p in ("README.md", "pkg/mod.py")}  # fmt: skip
        for doc_id in old["README.md"] + old["pkg/mod.py"]:
            assert (await stored(engine.rag, doc_id))["status"] == "processed"

        commit_files(ix.repo_dir, {
            "README.md": None,
            "pkg/mod.py": FILES["pkg/mod.py"] + "\n\ndef added(y):\n    return y + 1\n",
        }, "remove one, modify one")  # fmt: skip
        (run2,) = (await (await ix.trigger()).result()).runs
        assert (run2.outcome, run2.deleted, run2.deletions_pending, run2.jobs) == (
            "completed", 2, 0, 1,
        )  # fmt: skip
        for doc_id in old["README.md"] + old["pkg/mod.py"]:
            assert await stored(engine.rag, doc_id) == {
                "status": None, "full_doc": False, "chunk_ids": [], "chunks": 0,
            }, doc_id  # fmt: skip
        new = await doc_ids(ix, f"repo-index:{run2.run_id}:pkg/mod.py")
        assert len(new) == len(old["pkg/mod.py"]) + 1  # one chunk per symbol, one more symbol
        for doc_id in new:
            assert (await stored(engine.rag, doc_id))["status"] == "processed"
        assert await lightrag_docs(ix) == await manifest_docs(ix)


async def lightrag_docs(ix: Indexer) -> set[str]:
    """Every document of the workspace in LightRAG's doc status table (PostgreSQL storage)."""
    rows = await ix.db.fetch(
        "SELECT id FROM lightrag_doc_status WHERE workspace = $1", ix.spec.workspace
    )
    return {r["id"] for r in rows}


async def manifest_docs(ix: Indexer) -> set[str]:
    """The documents of every file of the manifest (its ingestion job's chunks)."""
    from shield_orchestrator.services.messages import chunk_document_id

    rows = await ix.db.fetch(
        "SELECT j.job_id, j.chunks_total FROM repo_files AS f JOIN jobs AS j USING (job_id)"
        " WHERE f.repo = $1",
        ix.spec.repo,
    )
    return {chunk_document_id(str(r["job_id"]), f"c{n:06d}")
            for r in rows for n in range(1, r["chunks_total"] + 1)}  # fmt: skip


async def test_concurrent_triggers_give_one_run_and_one_follow_up(
    indexer: Indexer, redis_srv: RedisServer
) -> None:
    """The pool starts late, so the first run waits in persist_kg while three more triggers
    arrive (one before a new commit, two after): they fold into one follow-up run."""
    ix = indexer
    first = git(ix.repo_dir, "rev-parse", "HEAD")
    h1, h2 = await asyncio.gather(ix.trigger(), ix.trigger())
    assert h1.id == h2.id == f"repo-index:{ix.spec.repo}:main"
    assert h1.result_run_id == h2.result_run_id  # one execution
    await wait_for(lambda: _has_jobs(ix, 4), what="the first run's jobs")
    second = commit_files(ix.repo_dir, {"docs/late.md": "# Late\n"}, "late")
    h3, h4 = await asyncio.gather(ix.trigger(), ix.trigger())
    assert h3.result_run_id == h4.result_run_id == h1.result_run_id
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        result = await h1.result()
    assert [(r.outcome, r.commit, r.jobs) for r in result.runs] == [
        ("completed", first, 4),
        ("completed", second, 1),
    ]
    assert len(await ix.jobs()) == 5  # each file ingested once
    assert await indexed_commit(ix) == second


async def _has_jobs(ix: Indexer, n: int) -> bool:
    return len(await ix.jobs()) >= n


async def test_sigterm_stops_the_worker_and_another_finishes_the_run_without_duplicates(
    indexer: Indexer,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    rendered_root: Path,
    temporal_srv: TemporalServer,
    tmp_path: Path,
) -> None:
    """``python -m shield_orchestrator.indexing.worker`` takes the run while the fixture's
    worker is paused; SIGTERM while persist_kg waits for the pool: exit 0 after its grace,
    and the retried persist_kg (fixture worker) finds the jobs by idempotency key."""
    ix = indexer
    queue = f"{ix.task_queue}-proc"
    log_path = tmp_path / "indexer.log"
    env = worker_env(rendered_root, redis_srv, postgres_srv, pg_database)
    proc = spawn_indexer(temporal_srv, queue, tmp_path / "proc-mirrors", env, log_path)
    try:
        handle = await trigger_on(ix, queue)
        await wait_for(lambda: _has_jobs(ix, 4), what="the process's jobs", timeout_s=60)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log_path.read_text(errors="replace")
    assert "stopping: in-flight activities get 1 s" in text, text
    assert "indexer stopped" in text, text
    from shield_orchestrator.indexing.activities import IndexerConfig, IndexingActivities
    from shield_orchestrator.indexing.worker import build_worker

    config = IndexerConfig(cache_dir=tmp_path / "mirrors2", heartbeat_every_s=0.5, job_poll_s=0.05)
    redis = ix.activities.redis
    second = build_worker(ix.client, IndexingActivities(redis, ix.db, config), task_queue=queue)
    async with second, running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        result = await handle.result()
    assert [(r.outcome, r.jobs) for r in result.runs] == [("completed", 4)]
    assert len(await ix.jobs()) == 4  # the retried persist_kg created none twice


def spawn_indexer(
    temporal: TemporalServer, queue: str, cache: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "shield_orchestrator.indexing.worker",
            "--temporal", temporal.address, "--namespace", "default", "--task-queue", queue,
            "--cache-dir", str(cache), "--graceful-shutdown-s", "1"]  # fmt: skip
    env = {**env, **temporal.client_environment()}
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


async def trigger_on(ix: Indexer, task_queue: str) -> Any:
    from shield_orchestrator.indexing.workflow import trigger_index

    return await trigger_index(ix.client, ix.spec, task_queue=task_queue)


async def test_missing_branch_fails_at_once_without_touching_anything(indexer: Indexer) -> None:
    """RepoNotFound is not retried: the workflow fails with that reason, no run is stored and
    nothing of the graph is touched (no job); the failure is recorded with its reason and the
    repository backs off: a non-forced trigger then runs nothing (no git call, outcome
    backing_off), a forced one runs and fails again (two consecutive failures)."""
    import dataclasses

    from shield_orchestrator.indexing import health
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ActivityError, ApplicationError

    ix = indexer
    ix.spec = dataclasses.replace(ix.spec, branch="no-such-branch")
    handle = await ix.trigger()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "RepoNotFound"
    assert "no-such-branch" in str(cause.cause)
    assert cause.retry_state is not None
    assert cause.retry_state.name == "NON_RETRYABLE_FAILURE"
    assert await ix.db.fetchval("SELECT count(*) FROM repo_index_runs") == 0
    assert await ix.jobs() == {}
    assert await runs_manifest(ix) == {}
    state = await health.read(ix.db, ix.spec.repo, "no-such-branch")
    assert (state.consecutive_failures, state.state) == (1, "backing_off")
    assert state.last_error is not None
    assert state.last_error.startswith("check_indexing_needed: RepoNotFound: ")
    assert "no-such-branch" in state.last_error
    assert 0 < state.wait_s <= 60
    result = await (await ix.trigger()).result()
    assert [(r.run_id, r.outcome) for r in result.runs] == [(None, "backing_off")]
    with pytest.raises(WorkflowFailureError):
        await (await ix.trigger(force=True)).result()
    state = await health.read(ix.db, ix.spec.repo, "no-such-branch")
    assert (state.consecutive_failures, state.state) == (2, "backing_off")
    assert 60 < state.wait_s <= 120


async def runs_manifest(ix: Indexer) -> dict[str, str]:
    from shield_orchestrator.indexing import runs

    return await runs.manifest(ix.db, ix.spec.repo, ix.spec.branch)


async def test_force_push_is_planned_from_the_manifest(
    indexer: Indexer, redis_srv: RedisServer
) -> None:
    """The branch is rewritten (reset to the first commit, a different change on top): the
    run compares trees with the manifest, never a commit range, and the commit follows."""
    ix = indexer
    first = git(ix.repo_dir, "rev-parse", "HEAD")
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        await (await ix.trigger()).result()
        commit_files(ix.repo_dir, {"docs/a.md": "# A\n", "pkg/mod.py": None}, "to be dropped")
        await (await ix.trigger()).result()
        git(ix.repo_dir, "reset", "-q", "--hard", first)
        rewritten = commit_files(ix.repo_dir, {"docs/b.md": "# B\n"}, "rewritten")
        (run,) = (await (await ix.trigger()).result()).runs
    assert await ix.run_paths(str(run.run_id)) == {
        "docs/a.md": "removed",
        "docs/b.md": "added",
        "pkg/mod.py": "added",  # gone in the dropped commit, back after the force-push
    }
    assert await indexed_commit(ix) == rewritten


async def test_a_stale_run_publishes_nothing(indexer: Indexer) -> None:
    """Two plans against the same base: the first publishes, the second's compare-and-set
    fails (StaleRun) and its transaction leaves the manifest and the commit as they were."""
    from shield_orchestrator.indexing import runs
    from shield_orchestrator.indexing.mirror import plan_commit
    from shield_orchestrator.indexing.plan import PlanPolicy

    ix = indexer
    spec = ix.spec
    plan = plan_commit(ix.repo_dir, "HEAD", {}, PlanPolicy())
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    for run_id in ids:
        await runs.record_plan(ix.db, run_id, repo=spec.repo, branch="main", workspace="code",
                               base_commit=None, plan=plan, previous={})  # fmt: skip
        for f in await runs.run_files(ix.db, run_id):
            await runs.set_file_job(ix.db, run_id, f.path, None, "empty")
    assert await runs.publish(ix.db, ids[0]) == "completed"
    before = await runs.manifest(ix.db, spec.repo, "main")
    with pytest.raises(runs.StaleRun):
        await runs.publish(ix.db, ids[1])
    assert await runs.manifest(ix.db, spec.repo, "main") == before
    assert await indexed_commit(ix) == plan.commit
    assert await runs.fail_run(ix.db, ids[1], "stale") is True
    assert (await runs.run(ix.db, ids[1])).status == "failed"
