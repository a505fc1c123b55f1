"""The front door: every `make` target the README names resolves in a fresh tree (no missing
rule, no folder only an earlier run made), `make help` lists it, and `make sandbox` refuses bad
input before it installs, builds or deploys anything (scripts/sandbox-preflight.sh)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PREFLIGHT = REPO / "scripts" / "sandbox-preflight.sh"


def readme_targets() -> list[str]:
    """Targets the README names as commands: `make X` in backticks or an indented code line."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"(?:`|^ {4,})make ([a-z][a-z-]*)\b", text, flags=re.MULTILINE)
    return sorted(set(found))


@pytest.fixture(scope="module")
def fresh_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files as they are in this tree, nothing else: what a fresh clone has
    (no build/, no .venv, no rendered code)."""
    dest = tmp_path_factory.mktemp("fresh") / "shield-orchestrator"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        src = REPO / rel
        if not src.exists():  # deleted in the working tree, not yet committed
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    assert (dest / "Makefile").is_file()
    assert not (dest / "build").exists()
    assert not (dest / ".venv").exists()
    return dest


def make(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_readme_names_the_two_commands() -> None:
    assert {"sandbox", "test"} <= set(readme_targets())


@pytest.mark.parametrize("target", readme_targets())
def test_every_readme_target_resolves_in_a_fresh_tree(fresh_tree: Path, target: str) -> None:
    result = make(fresh_tree, "-n", target)
    assert "No rule to make target" not in result.stderr, result.stderr
    assert result.returncode == 0, f"make -n {target}:\n{result.stdout[-2000:]}{result.stderr}"


def test_make_help_lists_every_readme_target(fresh_tree: Path) -> None:
    result = make(fresh_tree, "help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\s+make (\S+)", result.stdout, flags=re.MULTILINE))
    assert set(readme_targets()) <= listed, sorted(set(readme_targets()) - listed)


def test_the_published_guest_port_is_the_api_port() -> None:
    """harness/sandbox.sh publishes the guest's API port: it must be the role's default."""
    defaults = yaml.safe_load((REPO / "roles/orchestrator/defaults/main.yml").read_text())
    script = (REPO / "harness/sandbox.sh").read_text(encoding="utf-8")
    found = re.search(r"^GUEST_API_PORT=(\d+)", script, flags=re.MULTILINE)
    assert found, "GUEST_API_PORT= not in harness/sandbox.sh"
    assert int(found.group(1)) == defaults["orchestrator_api_port"]


# --- scripts/sandbox-preflight.sh --------------------------------------------------------------
def preflight(
    tmp_path: Path, path: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(PREFLIGHT)],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": path or os.environ["PATH"], **env},
        timeout=60,
        check=False,
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sandbox: ")
    return lines[0]


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def test_preflight_accepts_the_offline_defaults(tmp_path: Path, free_port: int) -> None:
    result = preflight(tmp_path, SANDBOX_API_PORT=str(free_port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("url", ["not-a-url", "ftp://host:11434", "http://", "http://h:1/x y"])
def test_preflight_refuses_an_ollama_value_that_is_no_url(
    tmp_path: Path, free_port: int, url: str
) -> None:
    line = refusal(preflight(tmp_path, OLLAMA=url, SANDBOX_API_PORT=str(free_port)))
    assert f"OLLAMA={url} is not an Ollama URL" in line
    assert "OLLAMA=http://HOST:11434" in line


def test_preflight_refuses_ollama_without_a_tiktoken_file(tmp_path: Path, free_port: int) -> None:
    line = refusal(
        preflight(tmp_path, OLLAMA="http://127.0.0.1:11434", SANDBOX_API_PORT=str(free_port))
    )
    assert "TIKTOKEN_FILE" in line
    assert "o200k_base.tiktoken" in line


def test_preflight_refuses_a_missing_tiktoken_file(tmp_path: Path, free_port: int) -> None:
    missing = tmp_path / "o200k_base.tiktoken"
    line = refusal(
        preflight(
            tmp_path,
            OLLAMA="http://127.0.0.1:11434",
            TIKTOKEN_FILE=str(missing),
            SANDBOX_API_PORT=str(free_port),
        )
    )
    assert f"TIKTOKEN_FILE={missing} is not a readable, non-empty file" in line


def test_preflight_accepts_ollama_with_a_tiktoken_file(tmp_path: Path, free_port: int) -> None:
    tiktoken = tmp_path / "o200k_base.tiktoken"
    tiktoken.write_text("IQ== 0\n")
    result = preflight(
        tmp_path,
        OLLAMA="http://127.0.0.1:11434/",
        TIKTOKEN_FILE=str(tiktoken),
        SANDBOX_API_PORT=str(free_port),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("port", ["0", "65536", "80a", " "])
def test_preflight_refuses_a_port_that_is_no_port(tmp_path: Path, port: str) -> None:
    line = refusal(preflight(tmp_path, SANDBOX_API_PORT=port))
    assert "is not a TCP port" in line
    assert "SANDBOX_API_PORT=8001" in line


def test_preflight_refuses_a_taken_port_naming_the_fix(tmp_path: Path, taken_port: int) -> None:
    line = refusal(preflight(tmp_path, SANDBOX_API_PORT=str(taken_port)))
    assert f"127.0.0.1:{taken_port} is taken" in line
    assert f"make sandbox SANDBOX_API_PORT={taken_port + 1}" in line


def _bin_with(tmp_path: Path, tools: list[str]) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bindir / tool)
    return str(bindir)


def test_preflight_refuses_no_podman_and_no_apt_get(tmp_path: Path, free_port: int) -> None:
    line = refusal(
        preflight(tmp_path, path=_bin_with(tmp_path, ["id"]), SANDBOX_API_PORT=str(free_port))
    )
    assert "podman is missing and there is no apt-get" in line
