"""``shieldctl repos add|list|show|index|remove`` against the API under uvicorn on loopback,
with real Redis and PostgreSQL and the Temporal dev server (tests/support/temporal.py).

What is proved: add prints the new id (the same id, "already registered", the second time), a
URL with credentials is refused naming credential_ref (exit 2), list prints a table row per
repository, show prints its indexing state as JSON, index prints the workflow id and run id
(the same ones while the run is active), remove unregisters (show is then an exit 2 with 404).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_shieldctl import shieldctl
from tests.support.api import api_settings, served
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
        added = await ctl(base, "add", "/srv/git/app.git", "--branch", "main",
                          "--exclude", "vendor/**", "--credential-ref", "GIT_TOKEN")  # fmt: skip
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
        assert detail["credential_ref"] == "GIT_TOKEN"
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
