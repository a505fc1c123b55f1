"""The package's layers, checked on the rendered tree (ARCHITECTURE.md, "Layering").

api -> services; workers -> services, engines; services -> database. api and workers never
import each other; services imports neither; indexing imports none of api, workers, engines;
only engines imports lightrag; only settings reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = "shield_orchestrator"


def _modules(root: Path) -> list[Path]:
    return sorted((root / PKG).rglob("*.py"))


def _area(path: Path, root: Path) -> str:
    parts = path.relative_to(root / PKG).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


FORBIDDEN = {
    "api": {f"{PKG}.workers", f"{PKG}.engines"},
    "workers": {f"{PKG}.api"},
    "services": {f"{PKG}.api", f"{PKG}.workers", f"{PKG}.engines"},
    "database": {f"{PKG}.api", f"{PKG}.workers", f"{PKG}.engines", f"{PKG}.services"},
    "indexing": {f"{PKG}.api", f"{PKG}.workers", f"{PKG}.engines"},
}


def test_layers_import_only_downwards(rendered_root: Path) -> None:
    violations = []
    for path in _modules(rendered_root):
        area = _area(path, rendered_root)
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN.get(area, ())):
                violations.append(f"{path.relative_to(rendered_root)} imports {name}")
    assert violations == []


def test_only_engines_import_lightrag(rendered_root: Path) -> None:
    offenders = [
        str(p.relative_to(rendered_root))
        for p in _modules(rendered_root)
        if _area(p, rendered_root) != "engines"
        and any(n == "lightrag" or n.startswith("lightrag.") for n in _imports(p))
    ]
    assert offenders == []


@pytest.mark.parametrize("needle", ["os.environ", "os.getenv", "getenv("])
def test_only_settings_reads_the_environment(rendered_root: Path, needle: str) -> None:
    offenders = [
        str(p.relative_to(rendered_root))
        for p in _modules(rendered_root)
        if p.name != "settings.py" and needle in p.read_text()
    ]
    assert offenders == []
