"""Writes bench/REPORT.md from the benchmarks' JSON results, and prints the summary table.

The report: a header, the machine and versions, the summary table (a row per benchmark), then
each benchmark's section between its markers. The parts come from bench/sections.py
(``assemble``): a benchmark (bench/result.py) is rendered here from its figures; a section of
the previous report that this run carries is rendered as it was, under a STALE line
(``sections.carried_lines``).

Plots are drawn by bench/plot.py inside the bench venv ``plot`` (matplotlib, pinned in
bench/peers/locks/plot.txt), never in the project's venv.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

from bench import result, sections, venvs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


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
    return sections.stale_reason(b.commit, b.measured_at, why)


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


def _benchmark_lines(b: result.Benchmark) -> list[str]:
    lines = [sections.open_marker(b.key, b.module, b.commit, b.measured_at), f"## {b.title}", ""]
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
    lines += ["", f"(took {b.seconds:.0f} s)", "", sections.close_marker(b.key), ""]
    return lines


def _summary_row(p: sections.Part) -> str:
    if isinstance(p, result.Benchmark):
        cells = [_cell(c) for c in (p.title, p.goal, _ratio(p), _verdict(p), _when(p))]
    else:  # carried: its cells as written (already escaped), the "measured at" cell says so
        cells = [*sections.carried_cells(p), _cell(sections.carried_when(p))]
    return "| " + " | ".join(cells) + " |"


def render(parts: list[sections.Part], info: dict[str, str], problems: list[str]) -> str:
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
        if isinstance(p, result.Benchmark):
            lines += _benchmark_lines(p)
        else:
            lines += sections.carried_lines(p)
    return "\n".join(lines).rstrip() + "\n"


def _when(b: result.Benchmark) -> str:
    when = f"{b.commit or '?'}, {b.measured_at or '?'}"
    return f"STALE: {when}" if b.stale else when


def _ratio(b: result.Benchmark) -> str:
    return f"{b.ratio_label} = {b.ratio:.3f}" if b.ratio is not None else "–"


def summary_table(parts: list[sections.Part]) -> str:
    head = ["benchmark", "ratio", "verdict", "measured at"]
    rows = [
        [p.key, _ratio(p), _verdict(p), _when(p)]
        if isinstance(p, result.Benchmark)
        else [p.key, *sections.carried_cells(p)[2:4], sections.carried_when(p)]
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
    parts: list[sections.Part],
    path: Path = BENCH / "REPORT.md",
    load_start: tuple[float, float, float] | None = None,
    problems: list[str] | None = None,
) -> Path:
    problems = list(problems or [])
    problems += draw_plots([p for p in parts if isinstance(p, result.Benchmark)], path.parent)
    path.write_text(render(parts, machine(load_start), problems))
    return path
