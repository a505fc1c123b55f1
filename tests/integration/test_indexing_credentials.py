"""A registration's credential_ref reaches git through GIT_ASKPASS, and nowhere else (issue 16).

Real parts: ``git http-backend`` behind a loopback WSGI server that requires HTTP Basic auth
(tests/support/git_http.py), the Temporal dev server, Redis, PostgreSQL, and the indexer's
worker in this event loop (test_indexing_workflow's ``indexer`` fixture) with the repository
registered by its http URL and the NAME of an environment variable of the indexer. The secret
must then appear in no URL, request line, ``.git/config`` or other mirror file, Temporal
payload or history, log line or error message; a wrong secret or a missing variable fails the
run at once (not retried) with a reason naming the variable, and never the secret.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_indexing_workflow import INDEXABLE, Indexer, indexer
from tests.support.git_http import GitHttpServer, git_http_server
from tests.support.pools import running_pool
from tests.support.servers import RedisServer
from tests.support.temporal import temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["indexer", "temporal_srv"]  # fixtures, used by name

USER = "indexer"


@pytest.fixture
def secret() -> str:
    return f"pw-{uuid.uuid4().hex}"


@pytest.fixture
def remote(indexer: Indexer, tmp_path: Path, secret: str) -> Iterator[GitHttpServer]:
    """The fixture's repository as a bare repository served over http with Basic auth."""
    root = tmp_path / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(indexer.repo_dir), str(root / "r.git")],
                   check=True)  # fmt: skip
    with git_http_server(root, USER, secret) as server:
        yield server


def registered(ix: Indexer, remote: GitHttpServer, ref: str) -> None:
    ix.spec = dataclasses.replace(ix.spec, url=remote.url("r.git"), credential_ref=ref)


def history_text(history_json: str) -> str:
    """The history as JSON plus every payload's data decoded (payloads are base64 in it)."""
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    decoded.append(base64.b64decode(value).decode("utf-8", "replace"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return history_json + "\n".join(decoded)


async def failed_at_once(handle: Any, error_type: str) -> Any:
    """The workflow failed on an activity's ``error_type``, not retried; that activity error."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ActivityError, ApplicationError

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == error_type
    assert cause.retry_state is not None
    assert cause.retry_state.name == "NON_RETRYABLE_FAILURE"
    return cause


def files_under(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


async def test_https_credentials_go_through_askpass_and_nowhere_else(
    indexer: Indexer,
    remote: GitHttpServer,
    secret: str,
    redis_srv: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    ix = indexer
    ref = f"REPO_CREDENTIAL_T{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(ref, f"{USER}:{secret}")
    registered(ix, remote, ref)
    caplog.set_level(logging.DEBUG)
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        handle = await ix.trigger()
        (run,) = (await handle.result()).runs
    assert (run.outcome, run.jobs, run.failed) == ("completed", len(INDEXABLE), 0)
    # git asked (a 401 first), the askpass answered: authorized requests followed.
    assert not remote.seen[0].authorized
    assert any(s.authorized for s in remote.seen)
    assert all(secret not in s.target for s in remote.seen)
    # Nowhere else: the mirror (config, packed refs, logs, hooks...), Temporal, logs, tables.
    mirrors = tmp_path / "mirrors"
    assert any(mirrors.glob("*.git/config"))
    for path in files_under(mirrors):
        assert secret.encode() not in path.read_bytes(), path
    for path in mirrors.glob("*.git/config"):
        assert remote.url("r.git") in path.read_text()  # the URL git keeps is credential-free
    history = history_text((await handle.fetch_history()).to_json())
    assert ref in history  # the variable's NAME travels in the payloads...
    assert secret not in history  # ...never its value
    assert secret not in caplog.text
    rows = await ix.db.fetch("SELECT * FROM repo_index_runs")
    assert rows
    assert all(secret not in str(dict(r)) for r in rows)


async def test_wrong_secret_fails_at_once_with_a_redacted_reason(
    indexer: Indexer, remote: GitHttpServer, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = indexer
    wrong = f"wrong-{uuid.uuid4().hex}"
    ref = f"REPO_CREDENTIAL_T{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(ref, f"{USER}:{wrong}")
    registered(ix, remote, ref)
    handle = await ix.trigger()
    cause = await failed_at_once(handle, "RepoAuthError")
    assert any(s.authorization for s in remote.seen)  # the askpass answered...
    assert not any(s.authorized for s in remote.seen)  # ...and the server refused it
    history = history_text((await handle.fetch_history()).to_json())
    assert ref in history
    assert wrong not in history
    assert wrong not in str(cause.cause)


async def test_missing_variable_fails_naming_it_before_any_request(
    indexer: Indexer, remote: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = indexer
    ref = f"REPO_CREDENTIAL_T{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.delenv(ref, raising=False)
    registered(ix, remote, ref)
    cause = await failed_at_once(await ix.trigger(), "RepoAuthError")
    assert cause.activity_type == "check_indexing_needed"
    assert f"the indexer's environment has no variable {ref}" in str(cause.cause)
    assert remote.seen == []  # git never ran
    assert await ix.db.fetchval("SELECT count(*) FROM repo_index_runs") == 0
