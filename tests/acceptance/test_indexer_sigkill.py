"""SIGKILL of an indexer worker process in the middle of a run (issue 16's Tests list).

Real parts: two ``python -m shield_orchestrator.indexing.worker`` processes (the rendered
package, the test's Redis and PostgreSQL), the Temporal dev server, a git repository in
tmp_path, and a pool with the offline engine (the real LightRAG code, PostgreSQL storages)
consuming the ingestion and deletion jobs. The first process takes the run; once its
``persist_kg`` has created a job (the pool starts only after the kill, so the activity is
surely in flight: still creating its jobs, or waiting for them), it is SIGKILLed: no graceful
shutdown, its heartbeats stop. Temporal retries the
activity on the second process after the heartbeat timeout, which finds the jobs the killed
attempt created by their idempotency keys. After each run LightRAG's document set of the
workspace equals the manifest's documents: nothing twice, nothing missing, nothing stale.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_engine_delete_documents import offline_engine
from tests.integration.test_indexing_workflow import (
    FILES,
    INDEXABLE,
    Indexer,
    _has_jobs,
    commit_files,
    indexer,
    lightrag_docs,
    manifest_docs,
    spawn_indexer,
    trigger_on,
)
from tests.support.pools import running_pool, wait_for
from tests.support.procs import worker_env
from tests.support.servers import PostgresServer, RedisServer, _stop
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.acceptance
__all__ = ["indexer", "temporal_srv"]  # fixtures, used by name


async def persist_kg_runs_on(handle: Any, pid: int) -> bool:
    """The workflow's pending persist_kg attempt was started by the process ``pid`` (the
    SDK's worker identity is ``<pid>@<host>``)."""
    description = await handle.describe()
    return any(
        a.activity_type.name == "persist_kg" and a.last_worker_identity.startswith(f"{pid}@")
        for a in description.raw_description.pending_activities
    )


async def test_sigkill_mid_run_completes_on_another_process_without_duplicates(
    indexer: Indexer,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    rendered_root: Path,
    temporal_srv: TemporalServer,
    tmp_path: Path,
) -> None:
    ix = indexer
    queue = f"{ix.task_queue}-procs"
    env = worker_env(rendered_root, redis_srv, postgres_srv, pg_database)
    first = spawn_indexer(temporal_srv, queue, tmp_path / "m1", env, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        handle = await trigger_on(ix, queue)
        await wait_for(lambda: persist_kg_runs_on(handle, first.pid), timeout_s=60,
                       what="persist_kg running in the first process", every_s=0.2)  # fmt: skip
        # the killed attempt created some of its jobs (all, or fewer if it is still creating)
        await wait_for(lambda: _has_jobs(ix, 1), what="a job of the first attempt")
        first.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 30) == -signal.SIGKILL
        second = spawn_indexer(temporal_srv, queue, tmp_path / "m2", env, tmp_path / "second.log")
        engine = offline_engine(tmp_path, postgres_srv, pg_database, workspace=ix.spec.workspace)
        async with running_pool(
            redis_srv, engine=engine, db=ix.db, workspace=ix.spec.workspace, timeout_s=60.0
        ):
            (run,) = (await handle.result()).runs
            assert (run.outcome, run.jobs, run.failed) == ("completed", len(INDEXABLE), 0)
            jobs = await ix.jobs()
            assert len(jobs) == len(INDEXABLE)  # the retried persist_kg created none twice
            assert set(jobs.values()) == {"completed"}
            assert await persist_kg_retried(handle)
            docs = await lightrag_docs(ix)
            assert docs
            assert docs == await manifest_docs(ix)

            # The next run (on the surviving process): one file modified, one removed.
            commit_files(ix.repo_dir, {
                "README.md": None,
                "pkg/mod.py": FILES["pkg/mod.py"] + "\n\ndef added(y):\n    return y + 1\n",
            }, "after the kill")  # fmt: skip
            (run2,) = (await (await trigger_on(ix, queue)).result()).runs
            assert (run2.outcome, run2.deleted, run2.jobs) == ("completed", 2, 1)
            assert await lightrag_docs(ix) == await manifest_docs(ix)
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc, timeout_s=30)
    assert "indexer polling" in (tmp_path / "second.log").read_text(errors="replace")


async def persist_kg_retried(handle: Any) -> bool:
    """The history shows persist_kg's completed attempt was not its first (the retry)."""
    events = (await handle.fetch_history()).events
    persist = {
        e.event_id for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "persist_kg"
    }  # fmt: skip
    return any(
        e.activity_task_started_event_attributes.scheduled_event_id in persist
        and e.activity_task_started_event_attributes.attempt >= 2
        for e in events
        if e.HasField("activity_task_started_event_attributes")
    )
