"""bench/run.py never drops a section of bench/REPORT.md.

bench/results (each module's JSON) is not committed, so a clone that re-runs one module has no
results for the others. Their sections of the report being rewritten are carried as they were
(between their ``<!-- bench:KEY -->`` markers), with their summary rows, marked STALE; a
results file replaces a section only when it was measured later. No benchmark module runs
here: ``run.run_module`` is replaced by one that returns fixed figures, or, for a module whose
file does not exist, is the real one (it reports "not in this checkout").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import report, result, run, sections

REPO = Path(__file__).resolve().parents[2]
MODULES = [("alpha", "bench_alpha", "tests"), ("beta", "bench_beta", "tests")]
REAL_RUN_MODULE = run.run_module


def _bench(key: str, ratio: float, commit: str, at: str) -> result.Benchmark:
    b = result.Benchmark(
        key=key,
        title=f"{key.capitalize()}: a | piped title",
        goal="ratio >= 1",
        columns=["measure", "value"],
        rows=[["ratio", ratio]],
        goal_met=ratio >= 1,
        ratio=ratio,
        ratio_label=f"{key} ÷ baseline",
        notes=[f"{key} measured at {ratio}"],
        seconds=12.0,
    )
    report.stamp(b, {"commit": commit, "measured_at": at, "load": "1.00 -> 2.00"})
    return b


RunModule = Callable[[str, str, Path], tuple[list[result.Benchmark], str]]


def _measuring(ratios: dict[str, float], commit: str, at: str) -> RunModule:
    def run_module(key: str, module: str, rendered: Path) -> tuple[list[result.Benchmark], str]:
        assert key in ratios, f"{key} was run"
        return [_bench(key, ratios[key], commit, at)], ""

    return run_module


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rendered_root: Path) -> Path:
    """Two modules, an empty results directory; the report's path."""
    monkeypatch.setattr(run, "MODULES", MODULES)
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    monkeypatch.setenv("SHIELD_RENDERED", str(rendered_root))
    return tmp_path / "REPORT.md"


def _block(text: str, key: str) -> str:
    m = re.search(rf"^<!-- bench:{key} .*? -->\n(.*?)^<!-- /bench:{key} -->$", text, re.M | re.S)
    assert m, f"no section {key}"
    return m[1]


def _row(text: str, title: str) -> list[str]:
    rows = sections._summary_rows(text.splitlines())
    assert title in rows, f"no summary row {title!r}: {sorted(rows)}"
    return rows[title]


def _stale_lines(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.startswith("**STALE**")]


def _first_report(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(
        run,
        "run_module",
        _measuring({"alpha": 1.5, "beta": 0.5}, "1111111", "2026-12-01 10:00 UTC"),
    )
    assert run.main(["--report", str(path)]) == 0
    return path.read_text()


def test_only_run_carries_the_other_modules_section_and_summary_row(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _first_report(bench_env, monkeypatch)
    beta, beta_row = _block(first, "beta"), _row(first, "Beta: a | piped title")
    assert not _stale_lines(beta)
    assert beta_row[3:] == ["NOT met", "1111111, 2026-12-01 10:00 UTC"]

    # another clone, no results/beta.json: only alpha is re-run
    monkeypatch.setattr(
        run, "run_module", _measuring({"alpha": 3.0}, "2222222", "2026-12-02 10:00 UTC")
    )
    assert run.main(["--only", "alpha", "--report", str(bench_env)]) == 0
    second = bench_env.read_text()

    carried = _block(second, "beta")
    [stale] = _stale_lines(carried)
    assert "not re-run: this run was --only alpha" in stale
    assert "carried from the previous report" in stale
    assert "measured at commit 1111111 on 2026-12-01 10:00 UTC" in stale
    assert carried.replace(stale + "\n\n", "", 1) == beta  # the rest verbatim
    row = _row(second, "Beta: a | piped title")
    assert row[:4] == beta_row[:4]
    assert row[4] == "STALE, carried from the previous report: 1111111, 2026-12-01 10:00 UTC"

    alpha = _block(second, "alpha")
    assert not _stale_lines(alpha)
    assert "Measured at commit 2222222" in alpha
    assert "(alpha ÷ baseline = 3.000)" in alpha
    assert _row(second, "Alpha: a | piped title")[3:] == ["met", "2222222, 2026-12-02 10:00 UTC"]
    assert second.index("<!-- bench:alpha ") < second.index("<!-- bench:beta ")  # MODULES order


def test_report_only_rewrites_keep_every_section_with_one_stale_line(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _first_report(bench_env, monkeypatch)
    monkeypatch.setattr(run, "run_module", _measuring({}, "", ""))  # nothing may run
    for _ in range(2):  # a carried section's earlier stale line is replaced, not repeated
        assert run.main(["--report-only", "--report", str(bench_env)]) == 0
    text = bench_env.read_text()
    for key in ("alpha", "beta"):
        [stale] = _stale_lines(_block(text, key))
        assert stale.startswith("**STALE**: not re-run: report rewritten with --report-only")
        assert _block(text, key).replace(stale + "\n\n", "", 1) == _block(first, key)


def test_results_file_replaces_a_section_only_when_measured_later(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _first_report(bench_env, monkeypatch)
    monkeypatch.setattr(run, "run_module", _measuring({}, "", ""))
    results = bench_env.parent / "results"
    older = _bench("beta", 0.1, "0dd0dd0", "2026-11-30 10:00 UTC")
    result.write(results / "beta.json", [older])
    assert run.main(["--report-only", "--report", str(bench_env)]) == 0
    assert "0dd0dd0" not in bench_env.read_text()
    assert "(beta ÷ baseline = 0.500)" in _block(bench_env.read_text(), "beta")

    later = _bench("beta", 2.0, "3333333", "2026-12-03 10:00 UTC")
    result.write(results / "beta.json", [later])
    assert run.main(["--report-only", "--report", str(bench_env)]) == 0
    beta = _block(bench_env.read_text(), "beta")
    [stale] = _stale_lines(beta)
    assert "carried" not in stale
    assert "measured at commit 3333333" in stale
    assert "(beta ÷ baseline = 2.000)" in beta
    alpha = _block(bench_env.read_text(), "alpha")
    assert alpha.replace(_stale_lines(alpha)[0] + "\n\n", "", 1) == _block(first, "alpha")
    assert _row(bench_env.read_text(), "Beta: a | piped title")[4].startswith("STALE: 3333333")


def test_module_that_produced_nothing_keeps_its_sections(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _first_report(bench_env, monkeypatch)
    # the real run_module: bench/bench_alpha.py is not in this checkout
    monkeypatch.setattr(run, "run_module", REAL_RUN_MODULE)
    assert run.main(["--only", "alpha", "--report", str(bench_env)]) == 0
    text = bench_env.read_text()
    [stale] = _stale_lines(_block(text, "alpha"))
    assert "not re-run: bench/bench_alpha.py did not produce it in this run" in stale
    assert "- alpha: bench/bench_alpha.py is not in this checkout" in text
    assert _block(text, "beta").replace(_stale_lines(_block(text, "beta"))[0] + "\n\n", "") == (
        _block(first, "beta")
    )


def test_assemble_carries_a_subset_and_drops_placeholders(tmp_path: Path) -> None:
    def section(key: str, module: str) -> sections.Section:
        lines = [f"## {key}", "", "Measured at commit 1111111 on 2026-12-01.", ""]
        return sections.Section(key, module, "", "2026-12-01", key, lines, None)

    previous = [section("saturation", "flow"), section("offline", "flow")]
    previous += [section("pool" + sections.NOT_MEASURED, "pool"), section("gone", "gone")]
    fresh = _bench("saturation", 1.0, "2222222", "2026-12-02 10:00 UTC")
    placeholder = _bench("pool" + sections.NOT_MEASURED, 0.0, "2222222", "2026-12-02 10:00 UTC")
    runs = [
        sections.ModuleRun("flow", [fresh], True, "not re-run: bench/bench_flow.py ran without it"),
        sections.ModuleRun("pool", [placeholder], True, "not re-run: failed"),
    ]
    parts = sections.assemble(runs, previous)
    assert [p.key for p in parts] == ["saturation", "offline", "pool.not-measured", "gone"]
    assert parts[0] is fresh
    assert parts[2] is placeholder  # the previous run's placeholder is not carried
    assert fresh.module == "flow"
    assert isinstance(parts[1], sections.Section)
    assert "ran without it" in parts[1].stale
    assert isinstance(parts[3], sections.Section)
    assert "not in bench/run.py's MODULES" in parts[3].stale
    not_run = sections.ModuleRun("pool", [], False, "not re-run: this run was --only flow")
    assert [p.key for p in sections.assemble([not_run], previous)] == [
        "saturation",
        "offline",
        "gone",
    ]
    text = report.render(parts, {"what": "value"}, [])
    assert "| offline | see its section | – | – | STALE, carried from" in text
    (tmp_path / "REPORT.md").write_text(text)
    read, unmarked = sections.read_sections(tmp_path / "REPORT.md")
    assert [s.key for s in read] == [p.key for p in parts]  # every part marked
    assert unmarked == []
    carried = parts[1]
    assert isinstance(carried, sections.Section)
    stale = f"**STALE**: {carried.stale}."
    assert read[1].lines == [*carried.lines[:2], stale, "", *carried.lines[2:]]


OLDER_REPORT = """# Benchmark report

## Summary

| benchmark | goal | measured ratio | verdict |
|---|---|---|---|
| Alpha | a >= 1 | a = 1.500 | met (measured at 1111111, 2026-11-23) |
| Beta | b >= 1 | b = 0.500 | NOT met (measured at 0dd0dd0, 2026-11-20) |

<!-- bench:alpha module="alpha" commit="1111111" measured="2026-11-23" -->
## Alpha

**STALE**: from the run of commit 1111111 (2026-11-23); its load averages were not recorded.

Goal: a >= 1.

<!-- /bench:alpha -->

<!-- bench:beta module="beta" commit="2222222" measured="2026-11-24" -->
## Beta

**STALE**: figures of the old default storages.

Goal: b >= 1.
<!-- /bench:beta -->
"""


def test_older_report_rows_and_stale_lines_are_not_said_twice(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older report's summary row put the commit and date in its verdict cell, and its
    sections had a STALE line written by hand: a carried row drops them from the verdict when
    they are the section's (the "measured at" cell says them), and the generated STALE line
    replaces a hand-written one first under the heading that names the section's commit, the
    hand line's clauses that do not name it kept on a line under it; a verdict or a STALE line
    that says something else is kept."""
    monkeypatch.setattr(run, "run_module", _measuring({}, "", ""))
    bench_env.write_text(OLDER_REPORT)
    for _ in range(2):  # and a second rewrite leaves it so
        assert run.main(["--report-only", "--report", str(bench_env)]) == 0
    text = bench_env.read_text()
    assert _row(text, "Alpha") == [
        "Alpha", "a >= 1", "a = 1.500", "met",
        "STALE, carried from the previous report: 1111111, 2026-11-23",
    ]  # fmt: skip
    assert _row(text, "Beta")[3] == "NOT met (measured at 0dd0dd0, 2026-11-20)"
    [stale] = _stale_lines(_block(text, "alpha"))
    assert stale.startswith("**STALE**: not re-run: report rewritten with --report-only")
    assert "measured at commit 1111111 on 2026-11-23" in stale
    rest = "Its load averages were not recorded."  # what the generated line does not say
    assert _block(text, "alpha") == f"## Alpha\n\n{stale}\n\n{rest}\n\nGoal: a >= 1.\n\n"
    generated, by_hand = _stale_lines(_block(text, "beta"))
    assert generated.startswith("**STALE**: not re-run: report rewritten with --report-only")
    assert by_hand == "**STALE**: figures of the old default storages."


def test_hand_stale_line_naming_only_the_commit_leaves_nothing_else() -> None:
    hand = "**STALE**: from the run recorded in commit 1111111 (2026-11-23)."
    s = sections.Section("a", "a", "1111111", "2026-11-23", "A", ["## A", "", hand, "", "x"], None)
    s.stale = "not re-run: why; measured at commit 1111111 on 2026-11-23"
    assert sections.carried_lines(s)[1:-2] == ["## A", "", f"**STALE**: {s.stale}.", "", "x"]


def test_marker_commit_that_is_not_a_hash_never_reaches_git(tmp_path: Path) -> None:
    """A hand-edited marker's commit is given to ``git diff`` only when it is 4 to 40 hex
    digits: "--output=FILE" would make git write the diff to FILE."""
    out = tmp_path / "written-by-git"
    for bad in (f"--output={out}", "-p", "HEAD", "abc", "1111111 --", "g111111"):
        reason = sections.stale_reason(bad, "2026-11-23", "not re-run: why")
        assert reason == "not re-run: why; measured at commit unknown on 2026-11-23", bad
    assert not out.exists()
    reason = sections.stale_reason("DEADBEEF" * 5, "2026-11-23", "not re-run: why")
    assert reason.startswith("not re-run: why; measured at commit " + "DEADBEEF" * 5)
    assert reason.endswith("(commit not found here: cannot tell what changed since)")


def test_measurement_times_compare_as_instants() -> None:
    assert sections._later("2026-12-02 00:30 UTC", "2026-12-01 23:00 UTC")
    assert not sections._later("2026-12-02 00:30 +02:00", "2026-12-01 23:00 UTC")  # 22:30 UTC
    assert sections._later("2026-12-02 00:30+0100", "2026-12-01")
    assert not sections._later("2026-12-01", "2026-12-01 00:00 UTC")  # a date is its midnight
    assert sections._later("2026-12-01", "")
    assert not sections._later("", "2026-12-01")
    assert not sections._later("2026-13-40", "2026-12-01")  # no such date: unknown


def test_broken_markers_stop_the_run_before_anything_runs(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "run_module", _measuring({}, "", ""))
    bench_env.write_text('# Benchmark report\n\n<!-- bench:alpha module="alpha" -->\n## A\n')
    assert run.main(["--report", str(bench_env)]) == 2
    assert "bench:alpha" in bench_env.read_text()  # not rewritten


def test_unmarked_section_is_named_as_lost(
    bench_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "run_module", _measuring({}, "", ""))
    bench_env.write_text("# Benchmark report\n\n## Summary\n\n## Old figures\n\nsome text\n")
    assert run.main(["--report-only", "--report", str(bench_env)]) == 0
    assert "section 'Old figures' has no `<!-- bench:KEY -->` marker" in bench_env.read_text()


def test_committed_report_marks_every_section_of_a_module() -> None:
    """The next run can carry every section of bench/REPORT.md: each one is marked with a
    module of run.MODULES and has its row in the summary table."""
    read, unmarked = sections.read_sections(REPO / "bench" / "REPORT.md")
    assert not unmarked
    modules = {key for key, _, _ in run.MODULES}
    assert {s.module for s in read} == modules
    assert [s.key for s in read if s.summary is None] == []
    assert all(s.commit and sections._date(s.measured_at) for s in read)
