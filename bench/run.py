"""`make bench`: run every benchmark module in its own process, then write bench/REPORT.md.

Each module is run as ``python -m bench.<module>`` with the environment

    BENCH_JSON       where to write its results (bench/result.py format; a list of Benchmark)
    BENCH_N          the task count of the overhead benchmark (default 20000)
    SHIELD_RENDERED  the rendered package (build/rendered/default), also put on PYTHONPATH

A module that writes no JSON still appears in the report, with its printed output and the
verdict "not measured". ``--only overhead,pool`` runs some of them; the report then shows the
others' latest results (bench/results/<key>.json), marked stale. Each result carries the commit,
time and load averages of the run that measured it (stamped here, never replaced by a later
rewrite); ``--report-only`` rewrites the report from them and marks every section stale.

bench/results is not committed: a section that this checkout has no newer results for (a fresh
clone, figures measured in another clone) is the report's own section, carried as it was and
marked stale (bench/sections.py: the sections' markers, ``assemble``); so is a section its module
did not produce in this run (it failed, or ran a subset). No run drops a section.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import adapters, report, result, sections

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"

# (key, module, owner): the order of the report.
MODULES = [
    ("overhead", "bench_overhead", "benchmarks"),  # 1. peers
    ("pool", "bench_pool", "worker runtime"),  # no-op vs ceiling, 3. PG transactions
    ("flow", "bench_flow", "benchmarks"),  # 2. LLM saturation + curve, 5. offline via pool
    ("scaling", "bench_scaling", "benchmarks"),  # 6. processes x pool sizes
    ("engines", "bench_engines", "engines"),  # engine-level saturation and offline
    ("api", "bench_api", "API"),  # 4. 202 latency at a fixed request rate
    ("sse", "bench_sse", "API"),  # issue 18: 200 followers of one job's event stream
    ("vectors", "bench_vectors", "benchmarks"),  # issue 14: vector stores without pgvector
    ("growth", "bench_growth", "benchmarks"),  # issue 14: cost per chunk as the graph grows
    ("workspaces", "bench_workspaces", "benchmarks"),  # issue 15: workspaces at once, hand-over
    ("indexing", "bench_indexing", "benchmarks"),  # issue 16: re-index 1 % of a repository
]
TIMEOUT_S = 3600
TIMEOUTS = {
    "growth": 8 * 3600,  # 50,000 chunks through one worker on 2 shared cores: hours
    "indexing": 2 * 3600,  # 2,000 files (~2,900 chunks) through LightRAG on 2 shared cores
}


def _env(rendered: Path, json_path: Path) -> dict[str, str]:
    path = [str(REPO), str(rendered), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "BENCH_JSON": str(json_path),
        "SHIELD_RENDERED": str(rendered),
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
    }


def run_module(key: str, module: str, rendered: Path) -> tuple[list[result.Benchmark], str]:
    """The module's benchmarks, and a problem line ('' when none)."""
    if not (BENCH / f"{module}.py").is_file():
        return [], f"{key}: bench/{module}.py is not in this checkout"
    json_path = RESULTS / f"{key}.json"
    json_path.unlink(missing_ok=True)
    log = RESULTS / "logs" / f"{key}.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_start = os.getloadavg()
    print(f"bench: running bench/{module}.py (log {log.relative_to(REPO)})", flush=True)
    with log.open("w") as out:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", f"bench.{module}"],
                cwd=REPO, env=_env(rendered, json_path), stdout=out, stderr=subprocess.STDOUT,
                timeout=TIMEOUTS.get(key, TIMEOUT_S), check=False,
            )  # fmt: skip
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -1
    seconds = time.perf_counter() - started
    stamp = report.provenance(load_start)
    if json_path.is_file():
        benches = result.read(json_path)
        for b in benches:
            b.seconds = b.seconds or round(seconds, 1)
            report.stamp(b, stamp)
        result.write(json_path, benches)  # the stamp travels with the figures
        problem = "" if code == 0 else f"{key}: bench/{module}.py exited {code} (see its log)"
        return benches, problem
    output = log.read_text(errors="replace")
    if key in adapters.ADAPTERS and (benches := adapters.ADAPTERS[key](output)):
        for b in benches:
            b.seconds = round(seconds, 1)
            report.stamp(b, stamp)
        result.write(json_path, benches)  # kept for `--only` runs of the other modules
        return benches, "" if code == 0 else f"{key}: bench/{module}.py exited {code}"
    tail = output.strip().splitlines()[-15:]
    placeholder = result.Benchmark(
        key=key + sections.NOT_MEASURED,  # never carried: no figures, and not the module's sections
        title=f"bench/{module}.py (no results in the report format)",
        goal="see the module",
        columns=["printed output (last lines)"],
        rows=[[line] for line in tail],
        notes=[f"exit status {code}; it wrote no BENCH_JSON file (bench/result.py format)."],
        seconds=round(seconds, 1),
    )
    report.stamp(placeholder, stamp)
    return [placeholder], f"{key}: bench/{module}.py wrote no results (exit {code})"


def _earlier(key: str, why: str) -> list[result.Benchmark]:
    """A module's latest results (bench/results/<key>.json), with their own provenance, stale."""
    path = RESULTS / f"{key}.json"
    log = RESULTS / "logs" / f"{key}.out"
    if not path.is_file() and key in adapters.ADAPTERS and log.is_file():
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(log.stat().st_mtime))
        benches = adapters.ADAPTERS[key](log.read_text(errors="replace"))
        for b in benches:  # the commit of that run is not known; its log's time is
            b.measured_at = b.measured_at or f"{when} (log file time)"
        result.write(path, benches)
    if not path.is_file():
        return []
    benches = result.read(path)
    for b in benches:
        b.stale = report.stale_reason(b, why)
    return benches


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run")
    ap.add_argument("--only", default="", help="comma-separated keys: " + ",".join(
        k for k, _, _ in MODULES))  # fmt: skip
    ap.add_argument("--report", type=Path, default=BENCH / "REPORT.md")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite the report from bench/results of the last run",
    )
    args = ap.parse_args(argv)
    rendered = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
    if not (rendered / "shield_orchestrator" / "__init__.py").is_file():
        print(f"bench: no rendered package under {rendered}: run `make render`", file=sys.stderr)
        return 2
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    try:  # read before anything runs: broken markers would otherwise end a long run
        previous, unmarked = sections.read_sections(args.report)
    except sections.ReportFormatError as exc:
        print(f"bench: {exc}; fix {args.report}'s markers first", file=sys.stderr)
        return 2
    load_start = os.getloadavg()
    runs: list[sections.ModuleRun] = []
    problems: list[str] = []
    for key, module, _owner in MODULES:
        if args.report_only or (only and key not in only):
            why = (
                "not re-run: report rewritten with --report-only"
                if args.report_only
                else f"not re-run: this run was --only {args.only}"
            )
            runs.append(sections.ModuleRun(key, _earlier(key, why), False, why))
            continue
        benches, problem = run_module(key, module, rendered)
        why = f"not re-run: bench/{module}.py " + (
            "did not produce it in this run (see the problems)" if problem else "ran without it"
        )
        runs.append(sections.ModuleRun(key, benches, True, why))
        if problem:
            problems.append(problem)
    parts = sections.assemble(runs, previous)
    titles = {p.title for p in parts}
    problems += [
        f"the previous report's section '{t}' has no `<!-- bench:KEY -->` marker, so it could not "
        "be carried: it is lost"
        for t in unmarked
        if t not in titles
    ]
    if args.report_only:
        problems.append(
            "report rewritten with --report-only: nothing was measured now; each section "
            "keeps the commit, time and load averages of the run that measured it"
        )
    path = report.write_report(
        parts, args.report, None if args.report_only else load_start, problems
    )
    print(report.summary_table(parts))
    print(f"\nbench: wrote {path}")
    for p in problems:
        print(f"bench: problem: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
