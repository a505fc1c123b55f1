"""Credentials of a repository's remote (indexing/mirrors.py git_auth, redact; askpass.py;
settings.repo_credential): tables, no network. The https path end to end, through git and a
Basic-auth server: tests/integration/test_indexing_credentials.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from shield_orchestrator.indexing import askpass
from shield_orchestrator.indexing.mirrors import NO_AUTH, RepoAuthError, git_auth, is_ssh, redact

CRED = "REPO_CREDENTIAL_UNIT"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("fatal: https://bob:hunter2@h/r.git refused", (), "fatal: https://***@h/r.git refused"),
        ("clone of ssh://git@h:22/r failed", (), "clone of ssh://***@h:22/r failed"),
        ("token ghp_x1 echoed: ghp_x1", ("ghp_x1",), "token *** echoed: ***"),
        ("user:pw and pw", ("user:pw", "pw"), "*** and ***"),  # the longest secret first
        ("nothing here: /srv/r.git", ("",), "nothing here: /srv/r.git"),
    ],
)
def test_redact(text: str, secrets: tuple[str, ...], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize(
    ("url", "ssh"),
    [("ssh://h/r.git", True), ("git@h:org/r.git", True), ("https://h/r.git", False),
     ("/srv/r.git", False)],
)  # fmt: skip
def test_is_ssh(url: str, ssh: bool) -> None:
    assert is_ssh(url) is ssh


def test_no_reference_or_a_local_path_needs_nothing(tmp_path: Path) -> None:
    assert git_auth("https://h/r.git", None, tmp_path) is NO_AUTH
    assert git_auth("/srv/r.git", "REPO_CREDENTIAL_UNSET", tmp_path) is NO_AUTH


def test_missing_variable_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRED, raising=False)
    with pytest.raises(RepoAuthError, match=f"no variable {CRED} "):
        git_auth("https://h/r.git", CRED, tmp_path)
    monkeypatch.setenv(CRED, "")
    with pytest.raises(RepoAuthError, match=re.escape(f"no variable {CRED} (or it is empty)")):
        git_auth("https://h/r.git", CRED, tmp_path)


@pytest.mark.parametrize("name", ["SHIELD_POSTGRES_PASSWORD", "PATH", "REPO_CREDENTIAL_"])
def test_only_repo_credential_variables_are_lent(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration naming the service's own secret cannot make git send it anywhere."""
    monkeypatch.setenv(name, "the-service-secret")
    with pytest.raises(RepoAuthError, match="only lend variables named REPO_CREDENTIAL_") as e:
        git_auth("https://attacker.invalid/r.git", name, tmp_path)
    assert "the-service-secret" not in str(e.value)
    assert not list(tmp_path.iterdir())  # no askpass wrapper was written for it


def test_https_gives_git_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRED, "bob:s3cret")
    auth = git_auth("https://h/r.git", CRED, tmp_path)
    wrapper = tmp_path / f"askpass-{CRED}"
    assert dict(auth.env) == {"GIT_ASKPASS": str(wrapper), "GIT_TERMINAL_PROMPT": "0"}
    assert set(auth.secrets) == {"bob:s3cret", "s3cret"}
    assert "s3cret" not in repr(auth)
    assert "s3cret" not in wrapper.read_text()
    assert os.access(wrapper, os.X_OK)


def test_askpass_program_answers_each_prompt(tmp_path: Path) -> None:
    """The installed wrapper, run as git runs it: the prompt in argv, the answer on stdout,
    the secret read from the environment it inherits (the indexer's)."""
    wrapper = askpass.install(tmp_path, CRED)

    def ask(prompt: str, value: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.defpath, CRED: value}
        return subprocess.run([str(wrapper), prompt], env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip

    assert ask("Username for 'https://h': ", "bob:pw").stdout == "bob\n"
    assert ask("Password for 'https://bob@h': ", "bob:pw").stdout == "pw\n"
    assert ask("Password for 'https://h': ", "tok").stdout == "tok\n"
    assert ask("Username for 'https://h': ", "tok").stdout == "x-access-token\n"
    unset = ask("Username for 'https://h': ", "")
    assert (unset.returncode, unset.stdout) == (1, "")
    assert f"the variable {CRED} is unset or empty" in unset.stderr


def test_ssh_key_path_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "id_ed25519"
    monkeypatch.setenv(CRED, str(tmp_path / "missing"))
    with pytest.raises(RepoAuthError, match=f"{CRED} must hold the path of an ssh"):
        git_auth("git@h:org/r.git", CRED, tmp_path)
    key.write_text("not a real key\n")
    monkeypatch.setenv(CRED, str(key))
    auth = git_auth("ssh://h/r.git", CRED, tmp_path)
    # git runs it through its shell, which expands the variable: the path is in no git argv
    assert dict(auth.env) == {
        "GIT_SSH_COMMAND": f'ssh -o BatchMode=yes -o IdentitiesOnly=yes -i "${{{CRED}}}"'
    }
