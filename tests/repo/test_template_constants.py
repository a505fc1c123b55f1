"""Logic in .py files, templates render constants only: a guard over every role.

- Every ``*.py.j2`` under roles/ has exactly one marked constants block (``# --- rendered
  constants`` ... ``# --- end of rendered constants``), before its first ``def`` or ``class``,
  holding at least one knob; every Jinja construct of the template is a knob line inside it
  (``NAME = {{ variable | filter }}``). A module with no knob is a plain file under the role's
  files/, not a template.
- No plain module (``roles/*/files/**/*.py``) holds a Jinja expression or statement: it would
  be copied as it is, never rendered.
- No module is both plain and rendered (two roles, or files/ and templates/ of one role), so
  the package's tree has one source per module.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.render.templates import BLOCK_END, BLOCK_START, KNOB

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((REPO / "roles").glob("*/templates/**/*.py.j2"))
PLAIN = sorted((REPO / "roles").glob("*/files/**/*.py"))
JINJA = ("{{", "{%", "{#")
# Jinja as the roles write it ({{ name ..., {% tag ..., {# ...); an f-string's {{x}} is not
JINJA_IN_PLAIN = re.compile(r"\{\{ [A-Za-z_]|\{%-? [a-z]|\{# ")
DEFINITION = re.compile(r"^(async def|def|class) ")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def constants_block(lines: list[str]) -> tuple[int, int]:
    """The 0-based (start, end) line numbers of the one marked block; AssertionError else."""
    starts = [i for i, line in enumerate(lines) if line.startswith(BLOCK_START)]
    ends = [i for i, line in enumerate(lines) if line.startswith(BLOCK_END)]
    assert len(starts) == 1, f"{len(starts)} lines start a constants block, expected 1"
    assert len(ends) == 1, f"{len(ends)} lines end a constants block, expected 1"
    assert starts[0] < ends[0], "the constants block ends before it starts"
    return starts[0], ends[0]


def problems(text: str) -> list[str]:
    """What breaks the rule in a template's text (empty: it holds)."""
    lines = text.splitlines()
    try:
        start, end = constants_block(lines)
    except AssertionError as exc:
        return [str(exc)]
    found = []
    first_definition = next((i for i, line in enumerate(lines) if DEFINITION.match(line)), None)
    if first_definition is not None and first_definition < start:
        found.append(f"line {first_definition + 1}: a definition above the constants block")
    knobs = [line for line in lines[start + 1 : end] if KNOB.match(line)]
    if not knobs:
        found.append("no knob in the constants block: a module without one is a plain file")
    for number, line in enumerate(lines, 1):
        if not any(mark in line for mark in JINJA):
            continue
        if not start < number - 1 < end:
            found.append(f"line {number}: Jinja outside the constants block")
        elif not KNOB.match(line):
            found.append(f"line {number}: not of the form NAME = {{{{ var | filter }}}}")
    return found


def test_there_are_templates_and_plain_modules() -> None:
    assert len(TEMPLATES) >= 5
    assert len(PLAIN) >= 50


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_jinja_only_in_the_constants_block(path: Path) -> None:
    assert problems(path.read_text(encoding="utf-8")) == [], _rel(path)


@pytest.mark.parametrize("path", PLAIN, ids=_rel)
def test_a_plain_module_holds_no_jinja(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert not JINJA_IN_PLAIN.search(line), (
            f"{_rel(path)}:{number}: Jinja in a plain module (copied, never rendered): move the "
            "value into a constants block of the role's templates and import it"
        )


def _package_module(path: Path) -> str:
    """shield_orchestrator/... of a plain module or a template (roles/<role>/<kind>/...)."""
    rel = path.relative_to(REPO / "roles").parts[2:]
    return "/".join(rel).removesuffix(".j2")


def test_each_module_has_one_source() -> None:
    sources: dict[str, list[str]] = {}
    for path in [*PLAIN, *TEMPLATES]:
        if path.relative_to(REPO / "roles").parts[2] == "shield_orchestrator":
            sources.setdefault(_package_module(path), []).append(_rel(path))
    assert {m: s for m, s in sources.items() if len(s) > 1} == {}


OK = '''"""Doc."""

from x import y

# --- rendered constants (roles/r/defaults/main.yml) ---
LIMIT = {{ r_limit | int }}  # a knob
# --- end of rendered constants ---


def f() -> int:
    return LIMIT
'''


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OK, []),
        (OK.replace("    return LIMIT", "    return {{ r_limit }}"), ["line 11: Jinja outside"]),
        (
            OK.replace("LIMIT = {{ r_limit | int }}", "LIMIT = {{ r_limit * 2 }}"),
            ["no knob", "line 6: not of"],
        ),
        (OK.replace("LIMIT = {{ r_limit | int }}  # a knob", "# none"), ["no knob"]),
        (OK.replace("# --- end of rendered constants ---", ""), ["0 lines end"]),
        (OK + OK[OK.index("# --- rendered") :], ["2 lines start"]),
        ("def g() -> None: ...\n" + OK, ["line 1: a definition above"]),
    ],
    ids=["ok", "outside", "expression", "empty", "unclosed", "two-blocks", "definition-above"],
)
def test_the_guard_catches_what_it_must(text: str, expected: list[str]) -> None:
    found = problems(text)
    assert len(found) == len(expected), found
    for message, start in zip(found, expected, strict=True):
        assert message.startswith(start), found


@pytest.mark.parametrize(
    ("line", "jinja"),
    [
        ("X = {{ orchestrator_port | int }}", True),
        ("{% if x %}", True),
        ("{# a comment #}", True),
        ("cmd = f'-i \"${{{credential_ref}}}\"'", False),
        ('rev = f"{commit}^{{commit}}"', False),
    ],
)
def test_plain_module_check_tells_jinja_from_fstrings(line: str, jinja: bool) -> None:
    assert bool(JINJA_IN_PLAIN.search(line)) is jinja
