"""Writes bench/REPORT.md from the benchmarks' JSON results, and prints the summary table.

Each benchmark's section sits between two HTML comments (invisible on GitHub)::

    <!-- bench:saturation module="flow" commit="68969c6" measured="2026-12-06 09:02 UTC" -->
    ## LLM saturation through the pool ...
    <!-- /bench:saturation -->

so that a run which does not re-measure a benchmark, and has no newer results file for it
(``bench/results`` is not committed), carries the previous report's section as it was, its
summary row with it, marked STALE (:func:`read_sections`, :func:`assemble`): no rewrite loses
a section. To drop one, delete it from REPORT.md by hand.

Plots are drawn by bench/plot.py inside the bench venv ``plot`` (matplotlib, pinned in
bench/peers/locks/plot.txt), never in the project's venv.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

from bench import result, venvs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

_OPEN = re.compile(r'^<!-- bench:(?P<key>\S+)(?P<attrs>(?: \w+="[^"]*")*) -->$')
_CLOSE = re.compile(r"^<!-- /bench:(?P<key>\S+) -->$")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
NOT_MEASURED = ".not-measured"  # key suffix of a module's placeholder section: no figures
# Every stale line the writer adds starts so (the reasons run.py gives all start "not re-run");
# a carried section's earlier one is replaced, a stale line written by hand is kept.
GENERATED_STALE = "**STALE**: not re-run"
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


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _pg_version() -> str:
    root = Path("/usr/lib/postgresql")
    bins = sorted(root.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return _cmd([str(bins[-1]), "--version"]) if bins else "not installed"


def _loads(x: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in x)


def _git(*args: str) -> str:
    return _cmd(["git", "-C", str(REPO), *args])


def provenance(load_start: tuple[float, float, float]) -> dict[str, str]:
    """The stamp of a module's run that just ended: commit, time, load averages start -> end."""
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": f"{_loads(load_start)} -> {_loads(os.getloadavg())}",
    }


def stamp(b: result.Benchmark, p: dict[str, str]) -> None:
    b.commit, b.measured_at, b.load = p["commit"], p["measured_at"], p["load"]


def stale_reason(b: result.Benchmark, why: str) -> str:
    """Why a section's figures are older than the report, with their commit and date, and
    whether the benchmark or the product code changed since (git diff against HEAD)."""
    return _stale_reason(b.commit, b.measured_at, why)


def _stale_reason(commit: str, measured_at: str, why: str) -> str:
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


def machine(load_start: tuple[float, float, float] | None = None) -> dict[str, str]:
    """The machine and versions (the report's header); load averages only when this run
    measured something (``load_start`` given): a rewrite's load says nothing of the figures."""
    from importlib import metadata

    def ver(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    info = {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores visible",
        "memory": _mem_gib(),
        "kernel": platform.release(),
        "os": _cmd(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "redis-server": _cmd(["redis-server", "--version"]),
        "postgresql": _pg_version(),
        "project libs": ", ".join(
            f"{n} {ver(n)}" for n in ("redis", "hiredis", "asyncpg", "uvloop", "lightrag-hku")
        ),
        "git commit (report written)": _git("rev-parse", "--short", "HEAD"),
    }
    if load_start is None:
        info["load averages"] = "per section (this rewrite measured nothing)"
    else:
        info["load average at start"] = _loads(load_start)
        info["load average at end"] = _loads(os.getloadavg())
    return info


def _cell(v: result.Cell) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v).replace("|", "\\|")


def _table(columns: list[str], rows: list[list[result.Cell]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _verdict(b: result.Benchmark) -> str:
    if b.goal_met is None:
        return "not measured"
    return "met" if b.goal_met else "NOT met"


def draw_plots(benchmarks: list[result.Benchmark], outdir: Path) -> list[str]:
    """Draw every curve into ``outdir``/<key>-<n>.png (bench venv 'plot'); errors as strings."""
    jobs = []
    for b in benchmarks:
        for i, c in enumerate(b.curves):
            c.png = f"{b.key}-{i + 1}.png"
            jobs.append(
                {"path": str(outdir / c.png), "title": c.title, "x_label": c.x_label,
                 "y_label": c.y_label, "series": c.series}
            )  # fmt: skip
    if not jobs:
        return []
    try:
        py = venvs.ensure_venv("plot")
        subprocess.run(
            [str(py), str(BENCH / "plot.py")],
            input=json.dumps(jobs),
            text=True,
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        for b in benchmarks:
            for c in b.curves:
                c.png = ""
        return [f"plots not drawn: {exc}"]
    return []


def _marker(key: str, module: str, commit: str, measured_at: str) -> str:
    attrs = {"module": module or key, "commit": commit, "measured": measured_at}
    text = " ".join(f'{k}="{v.replace(chr(34), chr(39))}"' for k, v in attrs.items())
    return f"<!-- bench:{key} {text} -->"


def _benchmark_lines(b: result.Benchmark) -> list[str]:
    lines = [_marker(b.key, b.module, b.commit, b.measured_at), f"## {b.title}", ""]
    if b.stale:
        lines += [f"**STALE**: {b.stale}.", ""]
    lines += [
        f"Measured at commit {b.commit or 'unknown'} on {b.measured_at or 'an unknown date'}"
        + (f", load averages {b.load}." if b.load else "."),
        "",
    ]
    lines += [f"Goal: {b.goal}. Verdict: **{_verdict(b)}**" + (
        f" ({b.ratio_label} = {b.ratio:.3f})." if b.ratio is not None else ".")]  # fmt: skip
    if b.baseline:
        lines += ["", f"Baseline (same run): {b.baseline}."]
    lines += ["", *_table(b.columns, b.rows), ""]
    for c in b.curves:
        if c.png:
            lines += [f"![{c.title}]({c.png})", ""]
    if b.limits:
        lines += [f"What limits it: {b.limits}", ""]
    lines += [f"- {n}" for n in b.notes]
    lines += ["", f"(took {b.seconds:.0f} s)", "", f"<!-- /bench:{b.key} -->", ""]
    return lines


def _carried_lines(s: Section) -> list[str]:
    """The section as it was, its earlier generated stale line replaced by this report's."""
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
    body[at:at] = [f"**STALE**: {s.stale}.", ""]
    opening = _marker(s.key, s.module, s.commit, s.measured_at)
    return [opening, *body, f"<!-- /bench:{s.key} -->", ""]


def _summary_row(p: Part) -> str:
    if isinstance(p, result.Benchmark):
        cells = [_cell(c) for c in (p.title, p.goal, _ratio(p), _verdict(p), _when(p))]
    else:  # carried: its cells as written (already escaped), the "measured at" cell says so
        cells = [*_carried_cells(p), _cell(_carried_when(p))]
    return "| " + " | ".join(cells) + " |"


def _carried_cells(s: Section) -> list[str]:
    """A carried section's benchmark, goal, ratio and verdict cells, from its summary row."""
    cells = (s.summary or [_cell(s.title), "see its section", "–", "–"])[:4]
    return cells + ["–"] * (4 - len(cells))


def render(parts: list[Part], info: dict[str, str], problems: list[str]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark report",
        "",
        f"Written by `make bench` on {now}. Benchmarks are not timed tests: every figure is",
        "a ratio against a baseline measured in the same run, because these machines are",
        "shared and noisy (see the load averages). Absolute rates are given for context. Each",
        "section says the commit, time and load averages of the run that measured it; a",
        "section not re-run for this report is marked STALE (one for which this checkout had",
        "no newer results is the previous report's section, carried as it was).",
        "",
        "## Machine and versions",
        "",
        *_table(["what", "value"], [[k, v] for k, v in info.items()]),
        "",
        "## Summary",
        "",
        *_table(["benchmark", "goal", "measured ratio", "verdict", "measured at"], []),
        *[_summary_row(p) for p in parts],
        "",
    ]
    if problems:
        lines += ["Problems in this run:", "", *[f"- {p}" for p in problems], ""]
    for p in parts:
        lines += _benchmark_lines(p) if isinstance(p, result.Benchmark) else _carried_lines(p)
    return "\n".join(lines).rstrip() + "\n"


def _when(b: result.Benchmark) -> str:
    when = f"{b.commit or '?'}, {b.measured_at or '?'}"
    return f"STALE: {when}" if b.stale else when


def _carried_when(s: Section) -> str:
    return f"STALE, carried from the previous report: {s.commit or '?'}, {s.measured_at or '?'}"


def _ratio(b: result.Benchmark) -> str:
    return f"{b.ratio_label} = {b.ratio:.3f}" if b.ratio is not None else "–"


def summary_table(parts: list[Part]) -> str:
    head = ["benchmark", "ratio", "verdict", "measured at"]
    rows = [
        [p.key, _ratio(p), _verdict(p), _when(p)]
        if isinstance(p, result.Benchmark)
        else [p.key, *_carried_cells(p)[2:4], _carried_when(p)]
        for p in parts
    ]
    width = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in width)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in width))]
    out += [fmt.format(*r) for r in rows]
    for p in parts:
        out += ["", f"[{p.key}] {p.title}"]
        if isinstance(p, result.Benchmark):
            out += ["  " + line for line in _table(p.columns, p.rows)]
        else:
            out += ["  (carried from the previous report as it was)"]
    return "\n".join(out)


def write_report(
    parts: list[Part],
    path: Path = BENCH / "REPORT.md",
    load_start: tuple[float, float, float] | None = None,
    problems: list[str] | None = None,
) -> Path:
    problems = list(problems or [])
    problems += draw_plots([p for p in parts if isinstance(p, result.Benchmark)], path.parent)
    path.write_text(render(parts, machine(load_start), problems))
    return path


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


def _date(text: str) -> tuple[str, str] | None:
    m = re.match(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}))?", text.strip())
    return (m[1], m[2] or "00:00") if m else None


def _later(a: str, b: str) -> bool:
    """Whether measurement time ``a`` is known and later than ``b`` (or ``b`` unknown)."""
    da, db = _date(a), _date(b)
    return da is not None and (db is None or da > db)


def carry(s: Section, why: str) -> Section:
    reason = _stale_reason(
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
