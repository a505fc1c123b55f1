"""git's askpass program for a repository's ``credential_ref`` (https remotes; mirrors.py).

git runs ``$GIT_ASKPASS "Username for 'https://host': "`` and then ``"Password for ...: "``
and reads each answer from the program's stdout. ``$GIT_ASKPASS`` is a wrapper that
:func:`install` writes per credential reference (``askpass-<NAME>``, mode 0700, holding the
variable's NAME and no secret); it runs :func:`main` with the indexer's own Python in isolated
mode (``-I``: no PYTHON* variables, no script directory on sys.path), which answers from the
variable (settings.repo_credential: only ``REPO_CREDENTIAL_*`` names). The secret lives in the
indexer's environment (its EnvironmentFile, or the vault in production) and reaches git's
children through the environment only: never argv, a URL, ``.git/config`` or a log line.

The variable holds ``username:password`` (a token: ``x-access-token:<token>`` for GitHub,
``oauth2:<token>`` for GitLab); a value without ``:`` is the password, sent with the user
name :data:`DEFAULT_USER`. A wrapper is needed because GIT_ASKPASS names one executable file
and the package's files are installed without an executable bit.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from shield_orchestrator.settings import repo_credential

DEFAULT_USER = "x-access-token"  # the user name sent with a bare token
_PROGRAM = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from shield_orchestrator.indexing.askpass import main; sys.exit(main(sys.argv))"
)


def answer(prompt: str, value: str) -> str:
    """What git is asking for (``Username for ...`` or ``Password for ...``) from ``value``."""
    user, sep, secret = value.partition(":")
    if not sep:
        user, secret = DEFAULT_USER, value
    return user if prompt.lstrip().lower().startswith("username") else secret


def install(directory: Path, name: str) -> Path:
    """The wrapper of the variable ``name`` in ``directory`` (written when missing or
    different); its path."""
    root = Path(__file__).resolve().parents[2]  # the directory holding shield_orchestrator/
    words = [sys.executable, "-I", "-c", _PROGRAM, str(root), name]
    script = f'#!/bin/sh\nexec {" ".join(shlex.quote(w) for w in words)} "$@"\n'
    path = directory / f"askpass-{name}"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == script and os.access(path, os.X_OK):
            return path
    except OSError:
        pass
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(script)
    partial.chmod(0o700)
    partial.replace(path)  # atomic: a concurrent git never runs half a file
    return path


def main(argv: list[str]) -> int:
    """``argv``: [program, variable name, git's prompt]."""
    name = argv[1] if len(argv) > 1 else ""
    prompt = argv[2] if len(argv) > 2 else ""
    try:
        value = repo_credential(name)
    except ValueError as exc:
        print(f"askpass: {exc}", file=sys.stderr)
        return 1
    if value is None:  # git then fails with "could not read Username": an auth error
        print(f"askpass: the variable {name} is unset or empty", file=sys.stderr)
        return 1
    sys.stdout.write(answer(prompt, value) + "\n")
    return 0
