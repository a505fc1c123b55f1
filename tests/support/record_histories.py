r"""Record the histories that tests/unit/test_workflow_replay.py replays (not run by default).

    SHIELD_RENDERED=build/rendered/default SHIELD_HISTORY_TAG=v2 \
        .venv/bin/python -m tests.support.record_histories [-k commands]

runs this module's ``test_record_*`` functions under pytest (the file name matches no test
pattern: ``make test`` never collects it): each runs a real execution of the indexing workflow
with the real worker code (test_indexing_workflow's ``indexer`` fixture: the dev server of
tests/support/temporal.py, Redis, PostgreSQL, a git repository in tmp_path, a noop-engine
pool), fetches its history and writes it, normalized, to tests/data/workflow_histories/ as
``<path>.json``, or ``<path>.<tag>.json`` with SHIELD_HISTORY_TAG; it never overwrites a file.

WHEN to re-record: only for a change of the workflow's code that is versioned on purpose
(``workflow.patched()``, or a new workflow name: add it to the replay test's workflows too).
Then ADD the new histories (a new SHIELD_HISTORY_TAG) and keep the old ones: executions in
flight during a rolling restart were recorded by the old code, and the replay test proves the
new code still replays them. Never re-record to make a failing replay pass: that failure is
the non-determinism error every run in flight would hit. A scenario for a new path (a new
``test_record_*``) records its own new file.

Normalized: no path, user or host of the recording machine (the test's temporary directory,
the rendered tree, the venv and the checkout become placeholders; worker identities become
``recorder``), in plain fields and inside the payloads (JSON, base64 in the history);
:meth:`Recorder.store` refuses a file that still holds one, or a test server's password.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_indexing_workflow import FILES, Indexer, commit_files, indexer
from tests.support.pools import running_pool, wait_for
from tests.support.servers import PostgresServer, RedisServer
from tests.support.temporal import temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["indexer", "temporal_srv"]  # fixtures, used by name

REPO = Path(__file__).resolve().parents[2]
HISTORIES = REPO / "tests" / "data" / "workflow_histories"
RENDERED = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
PAYLOAD_KEYS = {"metadata", "data"}


def placeholders(tmp_base: Path) -> dict[str, str]:
    """Machine-specific strings -> what the stored history says instead (longest first)."""
    pairs = {
        str(tmp_base): "/srv/shield-replay",
        str(RENDERED.resolve()): "/opt/shield-orchestrator",
        str(RENDERED): "/opt/shield-orchestrator",
        sys.prefix: "/opt/venv",
        str(REPO): "/src/shield-orchestrator",
        f"{os.getpid()}@{socket.gethostname()}": "recorder",  # the SDK's default identity
    }
    return dict(sorted(pairs.items(), key=lambda kv: -len(kv[0])))


def _replace(text: str, pairs: dict[str, str]) -> str:
    for old, new in pairs.items():
        text = text.replace(old, new)
    return text


def _normalize(node: Any, pairs: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) >= PAYLOAD_KEYS:  # a Payload: metadata (encoding) + base64 data
            raw = base64.b64decode(node["data"])
            with contextlib.suppress(UnicodeDecodeError):  # json/plain: rewritten; bytes: kept
                raw = _replace(raw.decode(), pairs).encode()
            node = {**node, "data": base64.b64encode(raw).decode()}
        return {k: "recorder" if k == "identity" else _normalize(v, pairs)
                for k, v in node.items()}  # fmt: skip
    if isinstance(node, list):
        return [_normalize(v, pairs) for v in node]
    if isinstance(node, str):
        return _replace(node, pairs)
    return node


def normalize(history_json: str, pairs: dict[str, str]) -> str:
    """The history with every machine-specific string replaced (payload data decoded first)."""
    return json.dumps(_normalize(json.loads(history_json), pairs), indent=1, sort_keys=True) + "\n"


def _decoded_text(history_json: str) -> str:
    """The history's JSON plus every payload's decoded data: what a grep should search."""
    parts = [history_json]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) >= PAYLOAD_KEYS:
                parts.append(base64.b64decode(node["data"]).decode(errors="replace"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(history_json))
    return "\n".join(parts)


@dataclasses.dataclass
class Recorder:
    """Runs executions on the ``indexer`` fixture and stores their histories."""

    ix: Indexer
    secrets: list[str]  # the test servers' passwords: in no stored history

    async def run(self, name: str, outcomes: list[str], force: bool = False) -> list[Any]:
        """Trigger, wait for the result, check its runs' outcomes, store the history."""
        handle = await self.ix.trigger(force=force)
        runs: list[Any] = (await handle.result()).runs
        assert [r.outcome for r in runs] == outcomes, runs
        await self.store(name, handle)
        return runs

    async def fail(self, name: str) -> None:
        """Trigger, expect the workflow to fail, store the history."""
        from temporalio.client import WorkflowFailureError

        handle = await self.ix.trigger()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await self.store(name, handle)

    async def store(self, name: str, handle: Any) -> Path:
        """Fetch the execution's history, normalize it, refuse it if anything leaks, write it."""
        own = self.ix.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        history = await own.fetch_history()
        tmp_base = self.ix.repo_dir.parent.parent  # pytest's base temp: every tmp_path's parent
        text = normalize(history.to_json(), placeholders(tmp_base))
        decoded = _decoded_text(text)
        machine = [*placeholders(tmp_base), "pytest-of-", f"@{socket.gethostname()}",
                   *self.secrets]  # fmt: skip
        leaks = [decoded[max(0, i - 60) : i + len(s) + 20] for s in machine
                 if s and (i := decoded.find(s)) >= 0]  # fmt: skip
        assert not leaks, f"{name}: machine-specific or secret strings left: {leaks}"
        tag = os.environ.get("SHIELD_HISTORY_TAG", "")
        path = HISTORIES / (f"{name}.{tag}.json" if tag else f"{name}.json")
        assert not path.exists(), f"{path} exists: old histories stay (SHIELD_HISTORY_TAG=...)"
        HISTORIES.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture
def rec(indexer: Indexer, redis_srv: RedisServer, postgres_srv: PostgresServer) -> Recorder:
    return Recorder(indexer, [redis_srv.password, postgres_srv.password])


async def test_record_first_incremental_and_up_to_date(
    rec: Recorder, redis_srv: RedisServer
) -> None:
    """A full first index, an incremental one (modified, removed, added, renamed: the
    deletion job), then a run that finds the head indexed."""
    ix = rec.ix
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        await rec.run("first_index", ["completed"])
        commit_files(ix.repo_dir, {
            "pkg/mod.py": FILES["pkg/mod.py"] + "\n\ndef added(y):\n    return y\n",
            "README.md": None,
            "docs/guide.md": "# Guide\n",
            "src/app.js": None,
            "src/main.js": FILES["src/app.js"],
        }, "second")  # fmt: skip
        (run,) = await rec.run("incremental", ["completed"])
        assert (run.deleted, run.jobs) == (3, 3)
        await rec.run("up_to_date", ["up_to_date"])


async def test_record_triggers_folded_into_a_follow_up(
    rec: Recorder, redis_srv: RedisServer
) -> None:
    """Triggers during a run (signals) fold into one follow-up run of the same execution."""
    ix = rec.ix
    handle = await ix.trigger()

    async def jobs_made() -> bool:
        return len(await ix.jobs()) >= 4

    await wait_for(jobs_made, what="the first run's jobs")  # persist_kg waits: no pool yet
    commit_files(ix.repo_dir, {"docs/late.md": "# Late\n"}, "late")
    await asyncio.gather(ix.trigger(), ix.trigger(force=True))
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        result = await handle.result()
    assert [r.outcome for r in result.runs] == ["completed", "completed"]
    await rec.store("follow_up", handle)


async def test_record_scheduled_forward(rec: Recorder) -> None:
    """A schedule's action (services/repositories.py): forward=True only runs trigger_index,
    which starts the repository's own workflow id (left to fail: its branch does not exist,
    so it ends at once)."""
    from shield_orchestrator.indexing.workflow import IndexRequest, RepoIndexingWorkflow

    spec = dataclasses.replace(rec.ix.spec, branch="no-such-branch")
    handle = await rec.ix.client.start_workflow(
        RepoIndexingWorkflow.run,
        IndexRequest(spec, uuid.uuid4().hex, forward=True),
        id=f"repo-index-schedule:{spec.repo}:{spec.branch}-2026-01-01T00:00:00Z",
        task_queue=rec.ix.task_queue,
    )
    assert (await handle.result()).runs == []
    await rec.store("scheduled_forward", handle)


async def test_record_failed_check_then_backing_off(rec: Recorder) -> None:
    """A missing branch: check_indexing_needed fails (RepoNotFound, not retried), the failure
    is recorded and the workflow fails; the next non-forced run is refused (backing_off)."""
    rec.ix.spec = dataclasses.replace(rec.ix.spec, branch="no-such-branch")
    await rec.fail("failed_check")
    await rec.run("backing_off", ["backing_off"])


async def test_record_commands(rec: Recorder, redis_srv: RedisServer) -> None:
    """The operator's command: "after" a full run, failing (CommandFailed: record_failure,
    cleanup_repo, the workflow fails), then "instead" of the built-in steps."""
    ix = rec.ix
    ix.spec = dataclasses.replace(ix.spec, command=["false"], command_mode="after")
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        await rec.fail("command_after_failed")
    commit_files(ix.repo_dir, {"docs/more.md": "# More\n"}, "more")
    ix.spec = dataclasses.replace(ix.spec, command=["true"], command_mode="instead")
    await rec.run("command_instead", ["completed"], force=True)


async def test_record_continue_as_new(rec: Recorder, redis_srv: RedisServer) -> None:
    """Triggers keep arriving during every run: after MAX_LOOPS runs the execution continues
    as new (its history: a full index, then check-only follow-ups, then CONTINUED_AS_NEW)."""
    from shield_orchestrator.indexing.workflow import MAX_LOOPS
    from temporalio.client import WorkflowExecutionStatus

    ix = rec.ix
    handle = await ix.trigger()
    first = ix.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)

    async def continued() -> bool:
        status = (await first.describe()).status
        return bool(status == WorkflowExecutionStatus.CONTINUED_AS_NEW)

    async def keep_triggering() -> None:
        while True:  # a few per run: each run of the loop sees a new request at its end
            await ix.trigger()
            await asyncio.sleep(0.02)

    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        triggers = asyncio.create_task(keep_triggering(), name="triggers")
        try:
            await wait_for(continued, timeout_s=120, what="continue-as-new")
        finally:
            triggers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await triggers
        await first.result()  # follows the new executions to the end
    path = await rec.store("continue_as_new", first)
    events = json.loads(path.read_text())["events"]
    checks = [e for e in events if e.get("activityTaskScheduledEventAttributes", {})
              .get("activityType", {}).get("name") == "check_indexing_needed"]  # fmt: skip
    assert len(checks) == MAX_LOOPS, len(checks)


def main(argv: list[str]) -> int:
    """pytest on this file only (its tests record; nothing else runs)."""
    return pytest.main([__file__, "-p", "no:cacheprovider", "-q", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
