"""The cached bare mirrors the indexer reads from: cloned once, fetched on every run.

    <cache_dir>/<repo slug>-<sha256(url)[:12]>.git    git clone --mirror (once), then
                                                      git fetch --prune origin (each run)
    <cache_dir>/<same>.lock                           flock: one writer per mirror per host

A mirror is a cache: any host can rebuild it, and an activity that needs a commit its host's
mirror lacks fetches first (:meth:`MirrorCache.ensure`), so the steps of one run may land on
different workers. git runs with argv lists, stdin closed, in its own session (no terminal
to prompt on), ``core.askPass`` failing and ssh in batch mode; a call is awaited in slices of
``beat_s``, calling ``beat()`` between them (the activity's heartbeat), and its process group
is killed when the call is cancelled or times out. What the remote answers is classified by
the exit code where git gives one (``ls-remote --exit-code``: 2 = no such ref), else by the
message (:func:`classify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from shield_orchestrator.indexing.mirror import GitError
from shield_orchestrator.indexing.runs import IndexingError

GIT_TIMEOUT_S = 1800.0  # one clone or fetch
GIT_CONFIG = ("-c", "core.askPass=false", "-c", "core.sshCommand=ssh -o BatchMode=yes",
              "-c", "credential.helper=", "-c", "protocol.ext.allow=never")  # fmt: skip
_NOT_FOUND = re.compile(
    r"not found|does not appear to be a git repository|does not exist|no such"
    r"|couldn't find remote ref",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"authentication failed|permission denied|could not read (username|password)"
    r"|terminal prompts disabled|403|401",
    re.IGNORECASE,
)

Beat = Callable[[], None]


class RepoNotFound(IndexingError):  # noqa: N818
    """The repository or the branch does not exist (not retried)."""


class RepoAuthError(IndexingError):
    """The remote refused the credentials, or asked for some (not retried)."""


def classify(command: str, returncode: int, stderr: str) -> IndexingError | GitError:
    """The error a failed remote git call raises; the message never holds the URL's secrets
    (the URLs are credential-free: credentials come from a reference, not the URL)."""
    tail = stderr.strip()[-500:]
    if _AUTH.search(tail):
        return RepoAuthError(f"git {command}: the remote refused access: {tail}")
    if _NOT_FOUND.search(tail):
        return RepoNotFound(f"git {command}: {tail}")
    return GitError(f"git {command} exited with {returncode}: {tail}")


async def run_git(*args: str, beat: Beat, beat_s: float, timeout_s: float = GIT_TIMEOUT_S) -> str:
    """Run ``git <GIT_CONFIG> <args>``; stdout on success, :func:`classify` raised otherwise."""
    proc = await asyncio.create_subprocess_exec(
        "git", *GIT_CONFIG, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    done = asyncio.ensure_future(proc.communicate())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while not done.done():
            if loop.time() > deadline:
                raise GitError(f"git {args[0]} timed out after {timeout_s:.0f} s")
            await asyncio.wait({done}, timeout=beat_s)
            beat()
        out, err = done.result()
    finally:
        if proc.returncode is None:  # cancelled or timed out: the whole group goes
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            done.cancel()
    if proc.returncode == 2 and args[0] == "ls-remote":
        raise RepoNotFound(f"no branch {args[-1].removeprefix('refs/heads/')!r} on the remote")
    if proc.returncode != 0:
        raise classify(args[0], proc.returncode or 0, err.decode("utf-8", "replace"))
    return out.decode("utf-8", "replace")


class MirrorCache:
    """Bare mirrors under ``cache_dir``, one per (repo, url)."""

    def __init__(self, cache_dir: Path, beat_s: float = 5.0) -> None:
        self.cache_dir = cache_dir
        self.beat_s = beat_s

    def path(self, repo: str, url: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo)[:64]
        return self.cache_dir / f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"

    async def remote_head(self, url: str, branch: str, beat: Beat) -> str:
        """The commit the remote's branch points at (``ls-remote``), without fetching."""
        ref = f"refs/heads/{branch}"
        out = await run_git("ls-remote", "--exit-code", "--", url, ref,
                            beat=beat, beat_s=self.beat_s)  # fmt: skip
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        raise RepoNotFound(f"no branch {branch!r} on the remote")

    @contextlib.asynccontextmanager
    async def _locked(self, mirror: Path, beat: Beat) -> AsyncIterator[None]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with mirror.with_suffix(".lock").open("a") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:  # another run of this host fetches the same mirror
                    beat()
                    await asyncio.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def fetch(self, repo: str, url: str, beat: Beat) -> Path:
        """Clone the mirror if this host has none, else fetch it; returns its path."""
        mirror = self.path(repo, url)
        async with self._locked(mirror, beat):
            if (mirror / "HEAD").is_file():
                await run_git("-C", str(mirror), "fetch", "--prune", "--quiet", "origin",
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
            else:
                partial = mirror.with_suffix(".partial")
                if partial.exists():  # a clone killed half-way on this host
                    shutil.rmtree(partial)
                await run_git("clone", "--mirror", "--quiet", "--", url, str(partial),
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
                partial.rename(mirror)
        return mirror

    async def ensure(self, repo: str, url: str, commit: str, beat: Beat) -> Path:
        """The mirror, fetched first when it lacks ``commit`` (another host fetched it)."""
        mirror = self.path(repo, url)
        if (mirror / "HEAD").is_file():
            try:
                await run_git("-C", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}",
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
                return mirror
            except (GitError, IndexingError):
                pass
        return await self.fetch(repo, url, beat)

    async def gc(self, repo: str, url: str, beat: Beat) -> None:
        mirror = self.path(repo, url)
        if (mirror / "HEAD").is_file():
            async with self._locked(mirror, beat):
                await run_git("-C", str(mirror), "gc", "--auto", "--quiet",
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
