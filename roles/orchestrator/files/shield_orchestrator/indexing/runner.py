"""Seed 000's runner: an operator-supplied command run in the repository's checkout (issue 16).

A registration may name a command (``RepoSpec.command``: an argv list, never a shell line),
which the workflow runs as the activity ``run_repo_command``::

    command_mode "after"    check, clone, the built-in steps up to persist_metadata, the command
    command_mode "instead"  check, clone, the command: no plan, no documents, no manifest; the
                            indexed commit moves (compare-and-set) when the command exits 0

One call, in order::

    git worktree add --detach <cache>/checkouts/<run>-<pid> <commit>   (of the mirror)
    the command: cwd = the checkout, stdin closed, its own session (process group), a small
        environment (PATH = COMMAND_PATH, LANG, HOME = the checkout, SHIELD_REPO_{ID,URL,
        BRANCH,COMMIT,WORKSPACE,CHECKOUT}): never the indexer's Redis or PostgreSQL secrets,
        never the repository's credential; a heartbeat every beat_s while it runs
    timeout (command_timeout_s) or cancellation: SIGTERM to the group, SIGKILL after
        KILL_GRACE_S; the checkout is removed and pruned (finally, whatever happened)
    the last TAIL_BYTES of stdout and of stderr, redacted (mirrors.redact: the credential
        variable's value and any user:pass@ of a URL), kept with the run (repo_run_commands)

A command that exits non-zero or times out raises :class:`CommandFailed` (not retried: the
operator's command decides, and a second run of a command that half-did its work is not
ours to risk); its tails are stored first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity

from shield_orchestrator.database.queries import query
from shield_orchestrator.indexing.activities import IndexingActivities
from shield_orchestrator.indexing.mirrors import Beat, MirrorCache, redact, run_git
from shield_orchestrator.indexing.runs import IndexingError, StaleRun
from shield_orchestrator.indexing.workflow import RepoSpec

TAIL_BYTES = 4096  # of stdout and of stderr, kept with the run
KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL of the command's process group
MODES = ("after", "instead")
DEFAULT_TIMEOUT_S = 600.0
COMMAND_PATH = "/usr/local/bin:/usr/bin:/bin"  # the command's PATH: name others by full path

_INSERT = """
INSERT INTO repo_run_commands (run_id, repo, branch, commit, argv, exit_code, timed_out,
                               stdout_tail, stderr_tail, duration_s)
VALUES ($1::uuid, $2, $3, $4, $5::text[], $6, $7, $8, $9, $10)
ON CONFLICT (run_id) DO UPDATE SET exit_code = EXCLUDED.exit_code,
    timed_out = EXCLUDED.timed_out, stdout_tail = EXCLUDED.stdout_tail,
    stderr_tail = EXCLUDED.stderr_tail, duration_s = EXCLUDED.duration_s, finished_at = now()"""


class CommandFailed(IndexingError):  # noqa: N818
    """The operator's command exited non-zero or timed out (not retried)."""


@dataclass(frozen=True)
class CommandOutcome:
    exit_code: int | None  # None: killed at the timeout
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    duration_s: float


class Tail:
    """The last ``limit`` bytes of a stream, read as it comes (a chatty command costs no
    memory beyond them)."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.data += chunk
            del self.data[: max(0, len(self.data) - self.limit)]

    def text(self, secrets: Sequence[str]) -> str:
        return redact(self.data.decode("utf-8", "replace"), secrets)


def command_env(checkout: Path, info: dict[str, str]) -> dict[str, str]:
    """The command's whole environment (see the module doc)."""
    env = {"PATH": COMMAND_PATH, "LANG": "C.UTF-8", "HOME": str(checkout),
           "SHIELD_REPO_CHECKOUT": str(checkout)}  # fmt: skip
    env.update({f"SHIELD_REPO_{k.upper()}": v for k, v in info.items()})
    return env


def _kill(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def run_command(
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    *,
    timeout_s: float,
    beat: Beat,
    beat_s: float,
    secrets: Sequence[str] = (),
    kill_grace_s: float = KILL_GRACE_S,
    clock: Callable[[], float] = time.monotonic,
) -> CommandOutcome:
    """Run ``argv`` in its own process group; its exit, tails and duration. See module doc."""
    start = clock()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
    except OSError as exc:  # no such program, not executable: the operator's to fix
        raise CommandFailed(f"command {argv[0]!r} could not start: {exc.strerror}") from exc
    out, err = Tail(), Tail()
    readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
    waited = asyncio.ensure_future(proc.wait())
    timed_out = False
    try:
        while not waited.done():
            if clock() - start > timeout_s:
                timed_out = True
                break
            await asyncio.wait({waited}, timeout=min(beat_s, max(0.01, timeout_s)))
            beat()
    finally:
        if proc.returncode is None:  # timed out, or the activity was cancelled
            _kill(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(waited), kill_grace_s)
            except TimeoutError:
                _kill(proc.pid, signal.SIGKILL)
                await waited
        _kill(proc.pid, signal.SIGKILL)  # what the command left behind in its group
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(readers, kill_grace_s)  # a grandchild left holding a pipe
    return CommandOutcome(
        None if timed_out else proc.returncode,
        timed_out,
        out.text(secrets),
        err.text(secrets),
        clock() - start,
    )


def _clear(where: Path) -> None:
    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(where, ignore_errors=True)


@contextlib.asynccontextmanager
async def checkout(mirror: Path, commit: str, where: Path, beat: Beat, beat_s: float) -> Any:
    """A detached worktree of ``mirror`` at ``commit`` in ``where``, removed on exit."""
    await asyncio.to_thread(_clear, where)  # a checkout of an attempt killed on this host
    await run_git("-C", str(mirror), "worktree", "prune", beat=beat, beat_s=beat_s)
    await run_git("-C", str(mirror), "worktree", "add", "--detach", "--quiet", str(where),
                  commit, beat=beat, beat_s=beat_s)  # fmt: skip
    try:
        yield where
    finally:
        await asyncio.to_thread(_clear, where)
        await run_git("-C", str(mirror), "worktree", "prune", beat=beat, beat_s=beat_s)


async def record(
    db: Any, run_id: str, info: dict[str, str], argv: Sequence[str], outcome: CommandOutcome
) -> None:
    await db.execute(
        _INSERT, run_id, info["id"], info["branch"], info["commit"], list(argv),
        outcome.exit_code, outcome.timed_out, outcome.stdout_tail, outcome.stderr_tail,
        outcome.duration_s,
    )  # fmt: skip


def failure(argv: Sequence[str], outcome: CommandOutcome, timeout_s: float) -> str | None:
    """The reason a run fails with, or None when the command succeeded."""
    last = (outcome.stderr_tail or outcome.stdout_tail).strip().splitlines()[-1:]
    said = f": {last[0][:300]}" if last else ""
    if outcome.timed_out:
        return f"command {argv[0]!r} timed out after {timeout_s:g} s (process group killed){said}"
    if outcome.exit_code != 0:
        return f"command {argv[0]!r} exited with {outcome.exit_code}{said}"
    return None


class CommandActivities:
    """``run_repo_command``, bound to one process's PostgreSQL pool and mirror cache (the
    indexer registers it beside IndexingActivities: worker.py)."""

    def __init__(self, db: Any, mirrors: MirrorCache, kill_grace_s: float = KILL_GRACE_S) -> None:
        self.db = db
        self.mirrors = mirrors
        self.kill_grace_s = kill_grace_s

    def all(self) -> list[Callable[..., Any]]:
        return [self.run_repo_command]

    beat = staticmethod(IndexingActivities.beat)  # the heartbeat and the cancellation check

    @activity.defn(name="run_repo_command")
    async def run_repo_command(
        self, spec: RepoSpec, run_id: str, commit: str, base_commit: str | None
    ) -> int:
        """Run the spec's command in a checkout of ``commit``; its exit code (0), else
        CommandFailed. Mode "instead": the indexed commit then moves from ``base_commit``."""
        if spec.command_mode not in MODES or not spec.command:
            raise ValueError(f"command_mode {spec.command_mode!r}: one of {', '.join(MODES)}, "
                             "with a non-empty command")  # fmt: skip
        beat_s = self.mirrors.beat_s
        auth = self.mirrors.auth(spec.url, spec.credential_ref)
        mirror = await self.mirrors.ensure(spec.repo, spec.url, commit, self.beat,
                                           spec.credential_ref)  # fmt: skip
        info = {"id": spec.repo, "url": redact(spec.url), "branch": spec.branch,
                "commit": commit, "workspace": spec.workspace}  # fmt: skip
        where = self.mirrors.cache_dir / "checkouts" / f"{run_id}-{os.getpid()}"
        async with checkout(mirror, commit, where, self.beat, beat_s) as tree:
            outcome = await run_command(
                spec.command, tree, command_env(tree, info), timeout_s=spec.command_timeout_s,
                beat=self.beat, beat_s=beat_s, secrets=auth.secrets,
                kill_grace_s=self.kill_grace_s,
            )  # fmt: skip
        await record(self.db, run_id, info, spec.command, outcome)
        reason = failure(spec.command, outcome, spec.command_timeout_s)
        if reason is not None:
            raise CommandFailed(reason)
        if spec.command_mode == "instead":
            async with self.db.acquire() as conn, conn.transaction():
                await conn.execute(query("ensure_index_state"), spec.repo, spec.branch)
                moved = await conn.fetchval(query("advance_indexed_commit"), spec.repo,
                                            spec.branch, base_commit, commit)  # fmt: skip
            if moved is None:
                raise StaleRun(run_id, base_commit)
        return 0
