"""Seed 000's runner (issue 16): the operator's command of a repository, run as the activity
``run_repo_command`` (indexing/runner.py) in a checkout of the run's commit.

Real parts: the commands are real processes (sh, the test's Python), the checkout a real git
worktree of the indexer's mirror, and the workflow runs on the Temporal dev server with Redis,
PostgreSQL and a noop pool (test_indexing_workflow's ``indexer`` fixture). Timeouts here are
inputs (a command that outlives them is killed), never measurements.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_indexing_credentials import failed_at_once
from tests.integration.test_indexing_workflow import INDEXABLE, Indexer, git, indexer
from tests.support.pools import running_pool
from tests.support.servers import RedisServer
from tests.support.temporal import temporal_srv

pytestmark = pytest.mark.integration
__all__ = ["indexer", "temporal_srv"]  # fixtures, used by name

# What the command sees: its directory (the checkout), its environment, and the files.
REPORT = (
    "import os, sys; print('cwd', os.getcwd()); print('env', ' '.join(sorted(os.environ)));"
    "print('commit', os.environ['SHIELD_REPO_COMMIT']);"
    "print('files', ' '.join(sorted(p for p in os.listdir('.') if p != '.git')));"
    "print('the end of stderr', file=sys.stderr)"
)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reparented child nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def no_beat() -> None:
    pass


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """The command starts a grandchild and ignores SIGTERM: at its timeout the group gets
    SIGTERM, then SIGKILL after the grace; nothing of it survives."""
    from shield_orchestrator.indexing.runner import run_command

    pids = tmp_path / "pids"
    script = (f"trap 'echo got TERM' TERM; sleep 1000 & echo $! > {pids}; echo $$ >> {pids};"
              "while :; do sleep 0.05; done")  # fmt: skip
    outcome = await run_command(["sh", "-c", script], tmp_path, {"PATH": os.defpath},
                                timeout_s=0.5, beat=no_beat, beat_s=0.1,
                                kill_grace_s=0.5)  # fmt: skip
    assert (outcome.exit_code, outcome.timed_out) == (None, True)
    assert "got TERM" in outcome.stdout_tail  # SIGTERM first, ignored, then SIGKILL
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    assert not any(alive(p) for p in started)


async def test_sigterm_is_enough_for_a_command_that_obeys(tmp_path: Path) -> None:
    from shield_orchestrator.indexing.runner import run_command

    script = "trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done"
    outcome = await run_command(["sh", "-c", script], tmp_path, {"PATH": os.defpath},
                                timeout_s=0.3, beat=no_beat, beat_s=0.1,
                                kill_grace_s=60)  # fmt: skip
    assert outcome.timed_out
    assert outcome.stdout_tail.strip() == "bye"  # it ran its handler: no SIGKILL was needed


async def test_tails_are_bounded_and_redacted(tmp_path: Path) -> None:
    from shield_orchestrator.indexing.runner import TAIL_BYTES, run_command

    script = (
        "import sys; sys.stdout.write('x' * 100000);"
        "print('pushing to https://bob:hunter2@git.example/r.git with tok-SECRET');"
        "sys.stderr.write('e' * 9000 + ' tok-SECRET'); sys.exit(3)"
    )
    outcome = await run_command([sys.executable, "-c", script], tmp_path, {},
                                timeout_s=60, beat=no_beat, beat_s=0.1,
                                secrets=("tok-SECRET",))  # fmt: skip
    assert (outcome.exit_code, outcome.timed_out) == (3, False)
    assert len(outcome.stdout_tail.encode()) <= TAIL_BYTES
    assert outcome.stdout_tail.endswith("pushing to https://***@git.example/r.git with ***\n")
    assert outcome.stderr_tail.endswith("e ***")
    assert "hunter2" not in outcome.stdout_tail
    assert "tok-SECRET" not in outcome.stdout_tail + outcome.stderr_tail


async def test_a_missing_program_is_the_operators_error(tmp_path: Path) -> None:
    from shield_orchestrator.indexing.runner import CommandFailed, run_command

    with pytest.raises(CommandFailed, match="'/nonexistent/indexer' could not start"):
        await run_command(["/nonexistent/indexer"], tmp_path, {}, timeout_s=5, beat=no_beat,
                          beat_s=0.1)  # fmt: skip


async def command_row(ix: Indexer, run_id: str) -> Any:
    return await ix.db.fetchrow("SELECT * FROM repo_run_commands WHERE run_id = $1::uuid", run_id)


def checkouts_left(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "mirrors" / "checkouts").glob("*"))


async def test_after_mode_runs_in_a_checkout_of_the_indexed_commit(
    indexer: Indexer, redis_srv: RedisServer, tmp_path: Path
) -> None:
    ix = indexer
    head = git(ix.repo_dir, "rev-parse", "HEAD")
    ix.spec = dataclasses.replace(ix.spec, command=[sys.executable, "-c", REPORT])
    async with running_pool(redis_srv, db=ix.db, workspace=ix.spec.workspace):
        (run,) = (await (await ix.trigger()).result()).runs
    assert (run.outcome, run.jobs) == ("completed", len(INDEXABLE))  # the built-in steps ran
    row = await command_row(ix, str(run.run_id))
    assert (row["exit_code"], row["timed_out"], row["commit"]) == (0, False, head)
    out = dict(line.split(" ", 1) for line in row["stdout_tail"].splitlines())
    assert out["commit"] == head
    assert out["files"] == ".env README.md data.bin pkg src"  # the tree, at that commit
    assert out["env"].split() == [
        "HOME", "LANG", "PATH", "SHIELD_REPO_BRANCH", "SHIELD_REPO_CHECKOUT", "SHIELD_REPO_COMMIT",
        "SHIELD_REPO_ID", "SHIELD_REPO_URL", "SHIELD_REPO_WORKSPACE",
    ]  # fmt: skip
    assert row["stderr_tail"] == "the end of stderr\n"
    assert checkouts_left(tmp_path) == []  # removed after
    mirror = next((tmp_path / "mirrors").glob("*.git"))
    assert len(git(mirror, "worktree", "list").splitlines()) == 1  # and pruned


async def test_instead_mode_replaces_the_built_in_steps(indexer: Indexer) -> None:
    """No pool runs here: the command alone indexes, the indexed commit follows it."""
    from shield_orchestrator.indexing import runs

    ix = indexer
    head = git(ix.repo_dir, "rev-parse", "HEAD")
    ix.spec = dataclasses.replace(ix.spec, command=[sys.executable, "-c", REPORT],
                                  command_mode="instead")  # fmt: skip
    (run,) = (await (await ix.trigger()).result()).runs
    assert (run.outcome, run.commit, run.jobs) == ("completed", head, 0)
    assert await ix.jobs() == {}  # nothing went to the pool
    assert await runs.indexed_commit(ix.db, ix.spec.repo, "main") == head
    assert (await command_row(ix, str(run.run_id)))["exit_code"] == 0
    # the head is indexed: the next trigger has nothing to do
    (again,) = (await (await ix.trigger()).result()).runs
    assert again.outcome == "up_to_date"


async def test_a_failing_command_fails_the_run_once_with_its_tail(
    indexer: Indexer, tmp_path: Path
) -> None:
    from shield_orchestrator.indexing import runs

    ix = indexer
    fail = "import sys; print('partial work'); sys.exit('indexer: the index is corrupt')"
    ix.spec = dataclasses.replace(ix.spec, command=[sys.executable, "-c", fail],
                                  command_mode="instead")  # fmt: skip
    cause = await failed_at_once(await ix.trigger(), "CommandFailed")
    assert cause.activity_type == "run_repo_command"
    assert "exited with 1: indexer: the index is corrupt" in str(cause.cause)
    (row,) = await ix.db.fetch("SELECT * FROM repo_run_commands")
    assert (row["exit_code"], row["stdout_tail"]) == (1, "partial work\n")
    assert await runs.indexed_commit(ix.db, ix.spec.repo, "main") is None  # nothing moved
    assert checkouts_left(tmp_path) == []
