"""requirements/app.lock, what the hosts' app venv is installed from (pip --require-hashes
--no-deps; `make lock` derives it from requirements/constraints.txt):

- every entry is pinned with ``==`` and carries sha256 hashes, nothing else (no URL, no -e);
- it agrees with constraints.txt: the same version per package, and the same environment marker
  where constraints.txt has one;
- it covers app.in: the closure of app.in's requirements (extras included, as installed in this
  venv, markers evaluated for this interpreter) is exactly the lock's entries whose marker holds
  here, so ``--no-deps`` leaves nothing out and installs nothing app.in does not need;
- every pip install in the roles requires hashes.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
REQS = REPO / "requirements"
SHA256 = re.compile(r"--hash=sha256:[0-9a-f]{64}")


class Pin(NamedTuple):
    version: str
    marker: str
    hashes: list[str]


def _logical_lines(path: Path) -> list[str]:
    """The file's requirement lines, continuations joined, comments dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def _pins(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    for line in _logical_lines(path):
        hashes = re.findall(r"--hash=\S+", line)
        req = Requirement(re.sub(r"\s--hash=\S+", "", line).strip())
        specs = list(req.specifier)
        assert len(specs) == 1, f"{path.name}: not one pin: {line}"
        assert specs[0].operator == "==", f"{path.name}: not pinned with ==: {line}"
        assert req.url is None, f"{path.name}: a URL: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{path.name}: {name} twice"
        pins[name] = Pin(specs[0].version, str(req.marker or ""), hashes)
    return pins


LOCK = _pins(REQS / "app.lock")


def test_every_entry_is_pinned_with_sha256_hashes() -> None:
    assert len(LOCK) > 20, sorted(LOCK)
    for name, pin in LOCK.items():
        assert pin.hashes, f"app.lock: {name} has no --hash (run make lock)"
        bad = [h for h in pin.hashes if not SHA256.fullmatch(h)]
        assert bad == [], f"app.lock: {name}: not sha256 hashes: {bad}"


# The hosts' Pythons (Debian 12: 3.11.2, Debian 13: 3.13) and a few others, for comparing markers.
ENVIRONMENTS = [
    {
        "python_version": ".".join(full.split(".")[:2]),
        "python_full_version": full,
        "implementation_name": impl.lower(),
        "platform_python_implementation": impl,
        "sys_platform": platform,
    }
    for full in ("3.11.2", "3.11.7", "3.12.3", "3.13.5")
    for impl in ("CPython", "PyPy")
    for platform in ("linux", "darwin", "win32", "cygwin")
]


def _holds(marker: str, env: dict[str, str]) -> bool:
    return not marker or Marker(marker).evaluate(env)


def test_the_lock_agrees_with_constraints() -> None:
    constraints = _pins(REQS / "constraints.txt")
    for name, pin in LOCK.items():
        assert name in constraints, f"{name} is in app.lock, not in constraints.txt: run make lock"
        want = constraints[name]
        assert pin.version == want.version, (
            f"{name}: app.lock {pin.version}, constraints.txt {want.version}: run make lock"
        )
        # The lock's marker may be narrower (cffi: the app needs it off PyPy only, a dev tool
        # everywhere), never wider: wherever the lock installs it, constraints.txt pins it.
        wider = [
            env for env in ENVIRONMENTS if _holds(pin.marker, env) and not _holds(want.marker, env)
        ]
        assert wider == [], (
            f"{name}: app.lock marker {pin.marker!r} holds where constraints.txt's "
            f"{want.marker!r} does not ({wider[:1]}): run make lock"
        )


def _closure() -> set[str]:
    """Every distribution app.in needs on this interpreter, from the installed metadata."""
    seen: set[str] = set()
    todo = [Requirement(line) for line in _logical_lines(REQS / "app.in")]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            deps = requires(name) or []
        except PackageNotFoundError:
            pytest.fail(f"{name} (needed by app.in) is not installed in this venv: make venv")
        for dep in map(Requirement, deps):
            envs = [{"extra": e} for e in [*req.extras, ""]]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append(dep)
    return {key.split("[")[0] for key in seen}


def test_the_lock_is_the_closure_of_app_in() -> None:
    here = {n for n, pin in LOCK.items() if not pin.marker or Marker(pin.marker).evaluate()}
    closure = _closure()
    assert sorted(closure - here) == [], "needed by app.in, missing from app.lock: run make lock"
    assert sorted(here - closure) == [], "in app.lock, not needed by app.in here: run make lock"


def _pip_installs() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in sorted(REPO.glob("roles/*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for item in [task, *task.get("block", [])]:
                command: Any = item.get("ansible.builtin.command") or {}
                argv = str(command.get("argv", "")) if isinstance(command, dict) else str(command)
                if "/bin/pip" in argv and "'install'" in argv:
                    found.append((str(path.relative_to(REPO)), str(item.get("name")), argv.split()))
    return found


def test_every_pip_install_in_the_roles_requires_hashes() -> None:
    installs = _pip_installs()
    assert {p for p, _, _ in installs} >= {
        "roles/orchestrator/tasks/install.yml",
        "roles/temporal/tasks/install.yml",
    }, installs
    for path, name, argv in installs:
        assert "'--require-hashes'," in argv, f"{path}: {name!r}: {argv}"
        assert "'--no-deps'," in argv, f"{path}: {name!r}: {argv}"
