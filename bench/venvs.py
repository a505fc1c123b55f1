"""Bench-only virtualenvs: one per peer queue (and one for plotting), never the project's .venv.

Each environment is described by a lock file ``bench/peers/locks/<name>.txt`` (exact pins of
the whole resolved set). The venv lives under
``${SHIELD_CACHE:-$HOME/.cache/shield-orchestrator}/bench-venvs/<name>-<hash>`` where the hash
covers the lock file and the interpreter version, so a changed pin builds a fresh venv and a
second run reuses the first one. Nothing of the peers enters the product.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

LOCKS = Path(__file__).resolve().parent / "peers" / "locks"


def cache_root() -> Path:
    base = os.environ.get("SHIELD_CACHE") or str(Path.home() / ".cache" / "shield-orchestrator")
    return Path(base) / "bench-venvs"


def lock_file(name: str) -> Path:
    path = LOCKS / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no lock file for bench venv {name!r}: {path}")
    return path


def venv_dir(name: str, python: str = sys.executable) -> Path:
    digest = hashlib.sha256()
    digest.update(lock_file(name).read_bytes())
    digest.update(sys.version.encode() if python == sys.executable else python.encode())
    return cache_root() / f"{name}-{digest.hexdigest()[:12]}"


def ensure_venv(name: str, python: str = sys.executable) -> Path:
    """The venv's python for ``name``, creating and installing it on first use (pinned, no deps
    beyond the lock: ``--no-deps`` makes a missing pin fail loudly instead of resolving)."""
    target = venv_dir(name, python)
    py = target / "bin" / "python"
    stamp = target / ".ready"
    if stamp.is_file():
        return py
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a half-built venv from an interrupted run
        subprocess.run(["rm", "-rf", str(target)], check=True)
    print(f"bench: building venv {name} in {target}", file=sys.stderr, flush=True)
    subprocess.run([python, "-m", "venv", str(target)], check=True)
    subprocess.run(
        [str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps",
         "-r", str(lock_file(name))],
        check=True,
    )  # fmt: skip
    # --no-deps installs exactly the lock; `pip check` proves the lock is complete.
    subprocess.run([str(target / "bin" / "pip"), "check", "-q"], check=True)
    stamp.write_text("ok\n")
    for old in target.parent.glob(f"{name}-*"):  # venvs of earlier locks of this name
        if old != target and old.is_dir():
            subprocess.run(["rm", "-rf", str(old)], check=True)
    return py


def installed_versions(py: Path, names: list[str]) -> dict[str, str]:
    """``{distribution: version}`` as installed in the venv of ``py``."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'missing'\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([str(py), "-c", code, *names], check=True, capture_output=True, text=True)
    return dict(json.loads(res.stdout))


if __name__ == "__main__":
    for n in sys.argv[1:] or sorted(p.stem for p in LOCKS.glob("*.txt")):
        print(n, ensure_venv(n))
