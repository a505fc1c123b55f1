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

Credentials (:func:`git_auth`): a registration's ``credential_ref`` is the NAME of an
environment variable of the indexer (its EnvironmentFile, or the vault); what reaches git is
more environment, never a secret in argv, a URL or ``.git/config``::

    https   GIT_ASKPASS = the askpass wrapper of the name (askpass.py): git asks the
            program, the program reads the variable (``user:secret``)
    ssh     GIT_SSH_COMMAND = ssh -o BatchMode=yes -o IdentitiesOnly=yes -i "${NAME}": the
            variable holds the private key file's path, expanded by git's shell
    path    nothing (a local repository)

Only ``REPO_CREDENTIAL_*`` variables can be named (settings.repo_credential: never the
service's own secrets). A name without the prefix, or a variable that is unset or empty,
fails the call before git runs (:class:`RepoAuthError`, not retried, naming the variable).
Every message made from git's stderr goes through :func:`redact` (the secret's value, and
any ``user:pass@`` of a URL, become ``***``).
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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shield_orchestrator.indexing import askpass
from shield_orchestrator.indexing.mirror import GitError
from shield_orchestrator.indexing.runs import IndexingError
from shield_orchestrator.settings import child_environment, repo_credential

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

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")  # scheme://user[:pass]@
REDACTED = "***"

Beat = Callable[[], None]


class RepoNotFound(IndexingError):  # noqa: N818
    """The repository or the branch does not exist (not retried)."""


class RepoAuthError(IndexingError):
    """The remote refused the credentials, or asked for some (not retried)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the secrets' values and without the userinfo of any URL in it."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _USERINFO.sub(rf"\g<1>{REDACTED}@", text)


@dataclass(frozen=True)
class GitAuth:
    """What git needs to authenticate to one remote: environment only (see the module doc)."""

    env: Mapping[str, str] = field(default_factory=dict)  # added to git's environment
    secrets: tuple[str, ...] = ()  # values to redact from anything git prints

    def __repr__(self) -> str:  # never the secrets, even in a debugger or a traceback
        return f"GitAuth(env={sorted(self.env)}, secrets={len(self.secrets)})"


NO_AUTH = GitAuth()


def is_ssh(url: str) -> bool:
    return url.lower().startswith("ssh://") or (
        "://" not in url and not url.startswith("/") and ":" in url.split("/", 1)[0]
    )


def git_auth(url: str, credential_ref: str | None, askpass_dir: Path) -> GitAuth:
    """The GitAuth of ``url`` with the credential the variable ``credential_ref`` holds."""
    if not credential_ref or url.startswith("/"):
        return NO_AUTH
    try:
        value = repo_credential(credential_ref)
    except ValueError as exc:
        raise RepoAuthError(str(exc)) from exc
    if value is None:
        raise RepoAuthError(
            f"credential_ref {credential_ref}: the indexer's environment has no variable "
            f"{credential_ref} (or it is empty); set it in the indexers' EnvironmentFile "
            "(or the vault) and restart them, or register the repository without credential_ref"
        )
    if is_ssh(url):
        if not Path(value).is_file():
            raise RepoAuthError(
                f"credential_ref {credential_ref}: the variable {credential_ref} must hold the "
                "path of an ssh private key file readable by the indexer; it names none"
            )
        command = f'ssh -o BatchMode=yes -o IdentitiesOnly=yes -i "${{{credential_ref}}}"'
        return GitAuth({"GIT_SSH_COMMAND": command})
    wrapper = askpass.install(askpass_dir, credential_ref)
    secret = value.partition(":")[2] or value
    return GitAuth({"GIT_ASKPASS": str(wrapper), "GIT_TERMINAL_PROMPT": "0"}, (value, secret))


def classify(
    command: str, returncode: int, stderr: str, secrets: Iterable[str] = ()
) -> IndexingError | GitError:
    """The error a failed remote git call raises; its message is redacted (:func:`redact`)."""
    tail = redact(stderr.strip()[-500:], secrets)
    if _AUTH.search(tail):
        return RepoAuthError(f"git {command}: the remote refused access: {tail}")
    if _NOT_FOUND.search(tail):
        return RepoNotFound(f"git {command}: {tail}")
    return GitError(f"git {command} exited with {returncode}: {tail}")


async def run_git(
    *args: str, beat: Beat, beat_s: float, timeout_s: float = GIT_TIMEOUT_S, auth: GitAuth = NO_AUTH
) -> str:
    """Run ``git <GIT_CONFIG> <args>``; stdout on success, :func:`classify` raised otherwise."""
    proc = await asyncio.create_subprocess_exec(
        "git", *GIT_CONFIG, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env=child_environment(auth.env) if auth.env else None,
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
        raise classify(args[0], proc.returncode or 0, err.decode("utf-8", "replace"), auth.secrets)
    return out.decode("utf-8", "replace")


class MirrorCache:
    """Bare mirrors under ``cache_dir``, one per (repo, url)."""

    def __init__(self, cache_dir: Path, beat_s: float = 5.0) -> None:
        self.cache_dir = cache_dir
        self.beat_s = beat_s

    def path(self, repo: str, url: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo)[:64]
        return self.cache_dir / f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"

    def auth(self, url: str, credential_ref: str | None) -> GitAuth:
        """git_auth with the askpass wrapper in the cache directory (the indexer's own)."""
        return git_auth(url, credential_ref, self.cache_dir)

    async def remote_head(
        self, url: str, branch: str, beat: Beat, credential_ref: str | None = None
    ) -> str:
        """The commit the remote's branch points at (``ls-remote``), without fetching."""
        ref = f"refs/heads/{branch}"
        out = await run_git("ls-remote", "--exit-code", "--", url, ref, beat=beat,
                            beat_s=self.beat_s, auth=self.auth(url, credential_ref))  # fmt: skip
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

    async def fetch(
        self, repo: str, url: str, beat: Beat, credential_ref: str | None = None
    ) -> Path:
        """Clone the mirror if this host has none, else fetch it; returns its path."""
        mirror = self.path(repo, url)
        auth = self.auth(url, credential_ref)
        async with self._locked(mirror, beat):
            if (mirror / "HEAD").is_file():
                await run_git("-C", str(mirror), "fetch", "--prune", "--quiet", "origin",
                              beat=beat, beat_s=self.beat_s, auth=auth)  # fmt: skip
            else:
                partial = mirror.with_suffix(".partial")
                if partial.exists():  # a clone killed half-way on this host
                    shutil.rmtree(partial)
                await run_git("clone", "--mirror", "--quiet", "--", url, str(partial),
                              beat=beat, beat_s=self.beat_s, auth=auth)  # fmt: skip
                partial.rename(mirror)
        return mirror

    async def ensure(
        self, repo: str, url: str, commit: str, beat: Beat, credential_ref: str | None = None
    ) -> Path:
        """The mirror, fetched first when it lacks ``commit`` (another host fetched it)."""
        mirror = self.path(repo, url)
        if (mirror / "HEAD").is_file():
            try:
                await run_git("-C", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}",
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
                return mirror
            except (GitError, IndexingError):
                pass
        return await self.fetch(repo, url, beat, credential_ref)

    async def gc(self, repo: str, url: str, beat: Beat) -> None:
        mirror = self.path(repo, url)
        if (mirror / "HEAD").is_file():
            async with self._locked(mirror, beat):
                await run_git("-C", str(mirror), "gc", "--auto", "--quiet",
                              beat=beat, beat_s=self.beat_s)  # fmt: skip
