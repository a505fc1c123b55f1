"""scripts/bootstrap.sh stops with one clear line when it cannot install what it needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bootstrap(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(REPO / "scripts" / "bootstrap.sh")],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "VENV": str(tmp_path / "venv"), **env},
        timeout=60,
        check=False,
    )


def _bin_without_apt(tmp_path: Path) -> str:
    """A PATH with the basic tools bootstrap uses, but no apt-get."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dpkg-query", "grep", "dirname", "cat", "sha256sum", "cut", "id", "tail"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bindir / tool)
    return str(bindir)


def test_a_missing_package_without_apt_is_one_line_naming_it(tmp_path: Path) -> None:
    result = _bootstrap(
        tmp_path,
        PATH=_bin_without_apt(tmp_path),
        SHIELD_APT_PACKAGES="shield-no-such-package",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "bootstrap: missing Debian packages shield-no-such-package and no apt-get here: "
        "install them by hand"
    ]


def test_a_wrong_python_is_named(tmp_path: Path) -> None:
    result = _bootstrap(
        tmp_path,
        PATH=os.environ["PATH"],
        SHIELD_APT_PACKAGES="bash",
        PYTHON="shield-no-such-python",
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "bootstrap: no shield-no-such-python on PATH: install Python 3.11"
    )
