"""The benchmarks' sections of bench/REPORT.md: their markers, and what a new report keeps of
the previous one.

Each benchmark's section sits between two HTML comments (invisible on GitHub)::

    <!-- bench:saturation module="flow" commit="68969c6" measured="2026-12-06 09:02 UTC" -->
    ## LLM saturation through the pool ...
    <!-- /bench:saturation -->

(the benchmark's key; module: bench/run.py's key of the module that measured it; commit and
measured: that run's). bench/results (each module's JSON) is not committed, so a run that does
not re-measure a benchmark, and has no newer results file for it (a fresh clone, figures
measured in another clone), carries the previous report's section as it was, with its summary
row, under a STALE line that says so: no rewrite loses a section. To drop one, delete it from
REPORT.md by hand, markers included.

- :func:`read_sections`: the previous report's marked sections (and its summary rows), or
  :class:`ReportFormatError` on broken markers, before anything runs;
- :func:`assemble`: the new report's parts, module by module: a benchmark measured now, or
  from a results file measured later than its section, replaces it; every other section is
  carried (:func:`carry`);
- :func:`carried_lines`, :func:`carried_cells`, :func:`carried_when`: what a carried section
  shows in the new report.

bench/report.py renders the parts: a benchmark (bench/result.py) from its figures, a carried
:class:`Section` with the functions above.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

from bench import result

REPO = Path(__file__).resolve().parents[1]

_OPEN = re.compile(r'^<!-- bench:(?P<key>\S+)(?P<attrs>(?: \w+="[^"]*")*) -->$')
_CLOSE = re.compile(r"^<!-- /bench:(?P<key>\S+) -->$")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_COMMIT = re.compile(r"[0-9a-fA-F]{4,40}")  # an abbreviated or full hash, never a git option
NOT_MEASURED = ".not-measured"  # key suffix of a module's placeholder section: no figures
# Every stale line the writer adds starts so (the reasons run.py gives all start "not re-run");
# a carried section's earlier one is replaced. A stale line written by hand is kept, unless it
# is the section's first line under its heading and names the section's commit: the generated
# line says that again, and only the hand line's clauses that do not name it are kept, on a
# line of their own under it (carried_lines).
GENERATED_STALE = "**STALE**: not re-run"
HAND_STALE = "**STALE**"
UNMARKED = ("Machine and versions", "Summary")  # the report's own sections, not benchmarks'


class ReportFormatError(ValueError):
    """The previous report's markers are broken: the writer would not know what to carry."""


@dataclasses.dataclass
class Section:
    """A benchmark's section of the previous report (between its markers), carried verbatim."""

    key: str
    module: str  # run.py's key of the module that measured it
    commit: str
    measured_at: str
    title: str  # its "## " heading
    lines: list[str]  # everything between the markers
    summary: list[str] | None  # its row of the summary table (cells as written), by title
    stale: str = ""  # why it is carried, set by assemble()


Part = result.Benchmark | Section


class ModuleRun(NamedTuple):
    """What this run has of one module: benchmarks just measured (``fresh``) or its results file's
    (stale), and why its other sections of the previous report are not re-measured."""

    module: str
    benchmarks: list[result.Benchmark]
    fresh: bool
    why: str  # starts "not re-run"


def open_marker(key: str, module: str, commit: str, measured_at: str) -> str:
    attrs = {"module": module or key, "commit": commit, "measured": measured_at}
    text = " ".join(f'{k}="{v.replace(chr(34), chr(39))}"' for k, v in attrs.items())
    return f"<!-- bench:{key} {text} -->"


def close_marker(key: str) -> str:
    return f"<!-- /bench:{key} -->"


def stale_reason(commit: str, measured_at: str, why: str) -> str:
    """Why a section's figures are older than the report (``why``), with their commit and date,
    and whether the benchmark or the product code changed since (git diff against HEAD). A
    commit that is not 4 to 40 hex digits (a hand-edited marker) is unknown: never given to
    git, where one starting with "-" would be read as an option."""
    commit = commit if _COMMIT.fullmatch(commit) else ""
    out = f"{why}; measured at commit {commit or 'unknown'} on {measured_at or 'an unknown date'}"
    if commit:
        res = subprocess.run(
            ["git", "-C", str(REPO), "diff", "--name-only", commit, "HEAD", "--", "bench",
             "roles"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        changed = [line for line in res.stdout.splitlines() if line]
        if res.returncode != 0:
            out += " (commit not found here: cannot tell what changed since)"
        elif changed:
            out += f"; {len(changed)} file(s) under bench/ or roles/ changed since"
    return out


# -- what a carried section shows in the new report ------------------------------------------


def _hand_rest(line: str, commit: str) -> list[str]:
    """What a hand-written ``**STALE**`` line says besides the section's commit: its clauses
    ("; "-separated) that do not name it, as a line of their own (none when nothing is left)."""
    text = line.removeprefix(HAND_STALE).lstrip(":").strip().removesuffix(".")
    rest = [c.strip() for c in text.split("; ") if c.strip() and commit not in c]
    if not rest:
        return []
    kept = "; ".join(rest)
    return [kept[0].upper() + kept[1:] + ".", ""]


def carried_lines(s: Section) -> list[str]:
    """The section as it was, its earlier generated stale line replaced by this report's, put
    under its heading; so is a hand-written ``**STALE**`` line there that names the section's
    commit (an older report's, e.g. "**STALE**: from the full run recorded in commit 1a33c99
    (2026-11-23); its load averages were not recorded."), which would otherwise stand under the
    generated one saying it again. Its clauses that do not name the commit ("Its load averages
    were not recorded.") stay, on a line under the generated one, which later rewrites keep."""
    body: list[str] = []
    skip_blank = False
    for line in s.lines:
        if line.startswith(GENERATED_STALE):
            skip_blank = True
            continue
        if not (skip_blank and line == ""):
            body.append(line)
        skip_blank = False
    at = 0
    if body and body[0].startswith("## "):
        at = 2 if len(body) > 1 and body[1] == "" else 1
    if s.commit and at < len(body) and body[at].startswith(HAND_STALE) and s.commit in body[at]:
        rest = _hand_rest(body[at], s.commit)
        body[at : at + (2 if body[at + 1 : at + 2] == [""] else 1)] = rest
    body[at:at] = [f"**STALE**: {s.stale}.", ""]
    opening = open_marker(s.key, s.module, s.commit, s.measured_at)
    return [opening, *body, close_marker(s.key), ""]


def carried_cells(s: Section) -> list[str]:
    """A carried section's benchmark, goal, ratio and verdict cells, from its summary row. An
    older report's 4-cell row put the commit and date in the verdict cell ("met (measured at
    68969c6, 2026-12-06 09:02 UTC)"): when they are the section's, they are dropped there, the
    "measured at" cell (:func:`carried_when`) saying them."""
    cells = (s.summary or [s.title.replace("|", "\\|"), "see its section", "–", "–"])[:4]
    cells += ["–"] * (4 - len(cells))
    cells[3] = cells[3].removesuffix(f" (measured at {s.commit}, {s.measured_at})")
    return cells


def carried_when(s: Section) -> str:
    """The "measured at" cell of a carried section's summary row."""
    return f"STALE, carried from the previous report: {s.commit or '?'}, {s.measured_at or '?'}"


# -- the previous report: its marked sections, and what the new one keeps of them -----------


def _cells(row: str) -> list[str]:
    inner = row.strip().removeprefix("|")
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]


def _summary_rows(lines: list[str]) -> dict[str, list[str]]:
    """The summary table's rows by their first cell (the benchmark's title)."""
    try:
        start = lines.index("## Summary")
    except ValueError:
        return {}
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(_cells(line))
        elif table or line.startswith("#"):
            break
    return {row[0].replace("\\|", "|"): row for row in table[2:]}


def read_sections(path: Path) -> tuple[list[Section], list[str]]:
    """The marked sections of the report at ``path`` (none when there is no such file), in its
    order, and the titles of its sections without markers (which no run can carry).

    Raises ReportFormatError on broken markers: unclosed, nested, closed under another key, or
    a key twice."""
    if not path.is_file():
        return [], []
    lines = path.read_text().splitlines()
    rows = _summary_rows(lines)
    sections: list[Section] = []
    unmarked: list[str] = []
    current: tuple[str, dict[str, str], int] | None = None
    body: list[str] = []
    for n, line in enumerate(lines, 1):
        opened, closed = _OPEN.match(line), _CLOSE.match(line)
        if current is None:
            if closed:
                raise ReportFormatError(f"{path}:{n}: {line} closes no open section")
            if opened:
                current, body = (opened["key"], dict(_ATTR.findall(opened["attrs"])), n), []
            elif line.startswith("## ") and line[3:] not in UNMARKED:
                unmarked.append(line[3:])
            continue
        key, attrs, start = current
        if opened or (closed and closed["key"] != key):
            raise ReportFormatError(f"{path}:{n}: {line} inside the section opened at line {start}")
        if not closed:
            body.append(line)
            continue
        if any(s.key == key for s in sections):
            raise ReportFormatError(f"{path}:{start}: a second section bench:{key}")
        title = next((x[3:] for x in body if x.startswith("## ")), key)
        sections.append(
            Section(key=key, module=attrs.get("module", key), commit=attrs.get("commit", ""),
                    measured_at=attrs.get("measured", ""), title=title, lines=body,
                    summary=rows.get(title))
        )  # fmt: skip
        current = None
    if current is not None:
        raise ReportFormatError(f"{path}:{current[2]}: bench:{current[0]} is never closed")
    return sections, unmarked


def _date(text: str) -> dt.datetime | None:
    """A measurement time ("2026-12-06 09:02 UTC", "2026-11-23"), time-zone aware: UTC (what
    the writer stamps; a date alone is its midnight), unless it gives an offset ("+01:00")."""
    m = re.match(
        r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2})(?::\d{2})?\s*(?P<tz>[+-]\d{2}:?\d{2})?)?",
        text.strip(),
    )
    if not m:
        return None
    offset = (m["tz"] or "+00:00").replace(":", "")
    try:
        return dt.datetime.strptime(f"{m[1]} {m[2] or '00:00'} {offset}", "%Y-%m-%d %H:%M %z")
    except ValueError:  # not a calendar date or time (2026-13-40)
        return None


def _later(a: str, b: str) -> bool:
    """Whether measurement time ``a`` is known and later than ``b`` (or ``b`` unknown), both
    compared as instants (:func:`_date`)."""
    da, db = _date(a), _date(b)
    return da is not None and (db is None or da > db)


def carry(s: Section, why: str) -> Section:
    reason = stale_reason(
        s.commit, s.measured_at, f"{why}; carried from the previous report as it was, this "
        "checkout having no newer results for it (bench/results)",
    )  # fmt: skip
    return dataclasses.replace(s, stale=reason)


def assemble(runs: list[ModuleRun], previous: list[Section]) -> list[Part]:
    """The new report's parts, module by module: a benchmark measured now replaces its section
    of the previous report; one from a results file (stale) replaces it only when measured later
    (the section may hold notes added by hand after that run). Every other section of the
    previous report is carried as it was, marked stale: of a module not re-run, of a module
    that ran without it (failed, or a subset of its benchmarks), or of a module no longer in
    ``runs`` (after the others). Placeholder sections (``NOT_MEASURED``: no figures) are not."""
    kept = [s for s in previous if not s.key.endswith(NOT_MEASURED)]
    parts: list[Part] = []
    for run in runs:
        old = {s.key: s for s in kept if s.module == run.module}
        for b in run.benchmarks:
            b.module = b.module or run.module
            s = old.pop(b.key, None)
            if s is not None and not run.fresh and not _later(b.measured_at, s.measured_at):
                parts.append(carry(s, run.why))  # its results file is not newer than it
            else:
                parts.append(b)
        parts += [carry(s, run.why) for s in old.values()]
    modules = {run.module for run in runs}
    parts += [
        carry(s, "not re-run: its module is not in bench/run.py's MODULES")
        for s in kept
        if s.module not in modules
    ]
    measured = {p.key for p in parts if isinstance(p, result.Benchmark)}
    # a benchmark that moved to another module: its new figures, not its old section too
    return [p for p in parts if isinstance(p, result.Benchmark) or p.key not in measured]
