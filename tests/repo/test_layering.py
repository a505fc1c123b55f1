"""The package's layers, checked on the rendered tree (ARCHITECTURE.md, "Layering").

Every import counts: module level and lazy (inside a function), ``import a.b``, ``from a.b
import c`` and ``from shield_orchestrator import keys`` (read as ``shield_orchestrator.keys``).
What each area may NOT import::

    api        workers, engines; database only in api/app.py (the composition root)
    workers    api; database only in workers/__main__.py (the composition root)
    services   api, workers, engines
    engines    api, workers, services, database (it needs settings, errors, logs, keys, lightrag)
    indexing   api, workers, engines
    database   api, workers, engines, services
    settings, errors, keys, logs (the leaves): every area above

Only engines imports lightrag. Only settings touches the process environment: no other module
names ``os.environ``, ``os.environb``, ``os.getenv``, ``os.putenv`` or ``os.unsetenv``, by
attribute (whatever ``os`` is imported as) or by ``from os import ...``. Both checks read the
syntax tree, so a comment or a docstring that mentions the environment is not an offence, and
``from os import environ`` is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = "shield_orchestrator"
_ABOVE_LEAVES = {"api", "workers", "services", "engines", "database", "indexing"}
FORBIDDEN: dict[str, set[str]] = {
    "api": {"workers", "engines", "database"},
    "workers": {"api", "database"},
    "services": {"api", "workers", "engines"},
    "engines": {"api", "workers", "services", "database"},
    "indexing": {"api", "workers", "engines"},
    "database": {"api", "workers", "engines", "services"},
    "settings": _ABOVE_LEAVES,
    "errors": _ABOVE_LEAVES,
    "keys": _ABOVE_LEAVES,
    "logs": _ABOVE_LEAVES,
}
# (area, module path in the package) allowed one forbidden area: the composition roots.
COMPOSITION_ROOTS = {
    ("api", "api/app.py"): "database",
    ("workers", "workers/__main__.py"): "database",
}
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _modules(root: Path) -> list[Path]:
    return sorted((root / PKG).rglob("*.py"))


def _area(path: Path, root: Path) -> str:
    parts = path.relative_to(root / PKG).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an import statement of ``tree`` names, lazy ones included."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == PKG:  # from shield_orchestrator import keys
                names.update(f"{PKG}.{alias.name}" for alias in node.names)
    return names


def environment_uses(tree: ast.AST) -> list[str]:
    """Each place ``tree`` reaches the process environment through ``os`` (line: what)."""
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names.update(a.asname or a.name for a in node.names if a.name == "os")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os" and node.level == 0:
            for alias in node.names:
                if alias.name in ENVIRONMENT or alias.name == "*":
                    found.append(f"{node.lineno}: from os import {alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ENVIRONMENT
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), str(path))


def test_layers_import_only_what_they_may(rendered_root: Path) -> None:
    violations = []
    for path in _modules(rendered_root):
        area = _area(path, rendered_root)
        module = path.relative_to(rendered_root / PKG).as_posix()
        allowed = COMPOSITION_ROOTS.get((area, module))
        for name in imported_modules(_parse(path)):
            parts = name.split(".")
            if parts[0] != PKG or len(parts) < 2 or parts[1] == allowed:
                continue
            if parts[1] in FORBIDDEN.get(area, set()):
                violations.append(f"{module} imports {name}")
    assert violations == []


def test_only_engines_import_lightrag(rendered_root: Path) -> None:
    offenders = [
        str(p.relative_to(rendered_root))
        for p in _modules(rendered_root)
        if _area(p, rendered_root) != "engines"
        and any(n == "lightrag" or n.startswith("lightrag.") for n in imported_modules(_parse(p)))
    ]
    assert offenders == []


def test_only_settings_reads_the_environment(rendered_root: Path) -> None:
    offenders = [
        f"{p.relative_to(rendered_root)}:{use}"
        for p in _modules(rendered_root)
        if p.relative_to(rendered_root / PKG).as_posix() != "settings.py"
        for use in environment_uses(_parse(p))
    ]
    assert offenders == []


# --- the checks themselves: what they catch and what they let pass ------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.environ['X'] = '1'",
        "import os\nx = os.getenv('X')",
        "import os as o\nx = o.environ.get('X')",
        "from os import environ",
        "from os import getenv as g",
        "from os import *",
        "def f():\n    import os\n    os.putenv('X', '1')",
    ],
)
def test_the_environment_check_catches(source: str) -> None:
    assert environment_uses(ast.parse(source)) != []


@pytest.mark.parametrize(
    "source",
    [
        '"""Reads os.environ? No: only settings does."""',
        "# os.getenv('X')",
        "import os\nos.getpid()",
        "from os import path",
        "environ = {}\nenviron.get('X')",
    ],
)
def test_the_environment_check_lets_pass(source: str) -> None:
    assert environment_uses(ast.parse(source)) == []


def test_the_import_check_sees_every_form() -> None:
    source = (
        "from shield_orchestrator import keys, api\n"
        "import shield_orchestrator.workers.worker_pool\n"
        "def f():\n    from shield_orchestrator.services.job_status import fetch_job\n"
    )
    assert imported_modules(ast.parse(source)) >= {
        f"{PKG}.keys",
        f"{PKG}.api",
        f"{PKG}.workers.worker_pool",
        f"{PKG}.services.job_status",
    }
