"""``shieldctl repos add|list|show|index|remove`` against the API under uvicorn on loopback,
with real Redis and PostgreSQL and the Temporal dev server (tests/support/temporal.py).

What is proved: add prints the new id (the same id, "already registered", the second time), a
URL with credentials is refused naming credential_ref (exit 2), list prints a table row per
repository, show prints its indexing state as JSON, index prints the workflow id and run id
(the same ones while the run is active), remove unregisters (show is then an exit 2 with 404).
``index --follow`` against a real indexer worker (indexing/worker.py, real activities, its own
task queue) and a worker pool on the workspace's stream: a progress bar of the run's files on
stderr, then the outcome and counts (4 files added and indexed, the secret and the binary
skipped); after one file changes, the follow-up run shows 1 modified, 3 unchanged.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_shieldctl import shieldctl
from tests.integration.test_indexing_workflow import FILES, commit_files, git
from tests.support.api import api_settings, served
from tests.support.pools import running_pool
from tests.support.servers import RedisServer
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.acceptance
__all__ = ["temporal_srv"]  # the session fixture, used by name


async def test_shieldctl_repos(
    worker_settings: Any, pg_pool: Any, temporal_srv: TemporalServer, tmp_path: Path
) -> None:
    from shield_orchestrator.services.repositories import TemporalTarget
    from temporalio.client import Client

    target = TemporalTarget(temporal_srv.address, "default", f"test-{uuid.uuid4().hex[:8]}")

    async def ctl(base: str, *args: str) -> Any:
        return await asyncio.to_thread(shieldctl, base, tmp_path, "repos", *args)

    async with served(api_settings(worker_settings), target) as base:
        added = await ctl(base, "add", "/srv/git/app.git", "--branch", "main", "--exclude",
                          "vendor/**", "--credential-ref", "REPO_CREDENTIAL_GIT")  # fmt: skip
        assert added.returncode == 0, added.stderr
        repo_id = added.stdout.strip()
        assert str(uuid.UUID(repo_id)) == repo_id
        assert added.stderr.strip() == "registered"
        again = await ctl(base, "add", "/srv/git/app.git", "--branch", "main")
        assert (again.returncode, again.stdout.strip()) == (0, repo_id)
        assert again.stderr.strip() == "already registered"
        secret = await ctl(base, "add", "https://u:pw@git.example.invalid/a.git", "--branch", "m")
        assert secret.returncode == 2
        assert "credential_ref" in secret.stderr
        assert "pw@" not in secret.stderr

        listed = await ctl(base, "list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["REPO", "BRANCH", "WORKSPACE", "CREATED", "URL"]
        assert lines[1].split()[0] == repo_id
        assert lines[1].split()[-1] == "/srv/git/app.git"
        assert listed.stderr.strip() == "1 repository"

        shown = await ctl(base, "show", repo_id)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["exclude"] == ["vendor/**"]
        assert detail["credential_ref"] == "REPO_CREDENTIAL_GIT"
        assert detail["index"]["state"] == "never_indexed"

        first = await ctl(base, "index", repo_id)
        assert first.returncode == 0, first.stderr
        workflow_id, _, run_id = first.stdout.strip().split()
        assert workflow_id == f"repo-index:{repo_id}:main"
        try:
            second = await ctl(base, "index", repo_id, "--force")
            assert second.stdout.strip() == first.stdout.strip()  # folded into the active run
        finally:
            client = await Client.connect(temporal_srv.address)
            await client.get_workflow_handle(workflow_id, run_id=run_id).terminate("test done")

        removed = await ctl(base, "remove", repo_id)
        assert removed.returncode == 0, removed.stderr
        assert "unregistered" in removed.stderr
        gone = await ctl(base, "show", repo_id)
        assert gone.returncode == 2
        assert "answered 404" in gone.stderr


async def test_shieldctl_repos_index_follow(
    worker_settings: Any, pg_pool: Any, redis_client: Any, redis_srv: RedisServer,
    temporal_srv: TemporalServer, tmp_path: Path,
) -> None:  # fmt: skip
    from shield_orchestrator.indexing.activities import IndexerConfig, IndexingActivities
    from shield_orchestrator.indexing.worker import build_worker
    from shield_orchestrator.services.repositories import TemporalTarget
    from temporalio.client import Client

    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", "-b", "main")
    git(repo_dir, "config", "user.email", "t@example.invalid")
    git(repo_dir, "config", "user.name", "t")
    commit_files(repo_dir, dict(FILES), "first")
    task_queue = f"test-follow-{uuid.uuid4().hex[:8]}"
    target = TemporalTarget(temporal_srv.address, "default", task_queue)
    client = await Client.connect(temporal_srv.address)
    config = IndexerConfig(cache_dir=tmp_path / "mirrors", heartbeat_every_s=0.5, job_poll_s=0.05)
    worker = build_worker(client, IndexingActivities(redis_client, pg_pool, config),
                          task_queue=task_queue, graceful_shutdown_s=5)  # fmt: skip

    async def ctl(base: str, *args: str) -> Any:
        return await asyncio.to_thread(shieldctl, base, tmp_path, "repos", *args)

    async with (
        served(api_settings(worker_settings), target) as base,
        worker,
        running_pool(redis_srv, db=pg_pool),
    ):
        added = await ctl(base, "add", str(repo_dir), "--branch", "main")
        assert added.returncode == 0, added.stderr
        repo_id = added.stdout.strip()

        first = await ctl(base, "index", repo_id, "--follow")
        assert first.returncode == 0, first.stdout + first.stderr
        lines = first.stdout.splitlines()
        assert lines[0].startswith(f"repo-index:{repo_id}:main run ")
        assert lines[1] == "outcome: completed: 4/4 files indexed, 0 failed (4 added; 0 unchanged)"
        assert lines[2] == "skipped: 1 binary, 1 secret"
        head = git(repo_dir, "rev-parse", "HEAD")
        assert lines[3] == f"commit: {head} (indexed: {head}, 4 files)"
        bars = [b for b in first.stderr.splitlines() if b.startswith("[")]
        assert bars[-1].startswith(f"[{'#' * 30}] 100.0%  4/4 files  0 failed")

        commit_files(repo_dir, {"README.md": "# Demo\n\nChanged.\n"}, "second")
        second = await ctl(base, "index", repo_id, "--follow")
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.splitlines()[1] == (
            "outcome: completed: 1/1 files indexed, 0 failed (1 modified; 3 unchanged)"
        )
