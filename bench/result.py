"""What a benchmark hands to the report writer (bench/report.py): plain JSON-able dataclasses.

Every benchmark module (bench_overhead, bench_pool, bench_engines, bench_api, ...) produces
one or more :class:`Benchmark` objects. A benchmark states its goal, the baseline it divides
by (measured in the same run: these machines are shared and noisy), a table, and optionally
a curve for a plot. ``write``/``read`` move them between processes as JSON, so a benchmark
can run in its own process (or its own venv) and the runner still builds one report.

JSON shape (one file may hold a list of these)::

    {"key": "overhead", "title": "...", "goal": "...", "goal_met": true | false | null,
     "ratio": 1.7, "ratio_label": "our pool / fastest peer", "baseline": "raw XREADGROUP+XACK",
     "columns": ["queue", "enqueue/s", ...], "rows": [["taskiq", 2900.0, ...], ...],
     "notes": ["..."], "limits": "what bounds the figure",
     "commit": "e77a677", "measured_at": "2026-12-06 05:40 UTC", "load": "1.2 ... -> 1.9 ...",
     "module": "overhead",
     "curves": [{"title": "...", "x_label": "...", "y_label": "...",
                 "series": {"name": [[x, y], ...]}, "png": "overhead.png"}]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Cell = str | int | float | None


@dataclass
class Curve:
    title: str
    x_label: str
    y_label: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    png: str = ""  # file name under bench/, set by the report writer when it draws it


@dataclass
class Benchmark:
    key: str  # short id, also used for file names: "overhead", "saturation", ...
    title: str
    goal: str  # the goal as the issue states it, e.g. "our pool ahead of the fastest peer"
    columns: list[str]
    rows: list[list[Cell]]
    goal_met: bool | None = None  # None: not measured in this run (say why in notes)
    ratio: float | None = None  # the headline ratio that the goal is judged on
    ratio_label: str = ""
    baseline: str = ""  # what the ratios divide by, measured in the same run
    limits: str = ""  # what bounds the figure
    notes: list[str] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    seconds: float = 0.0  # wall time the benchmark took (information only)
    # Provenance, stamped by bench/run.py when the module ran and kept by every later rewrite:
    commit: str = ""  # git commit the figures were measured at
    measured_at: str = ""  # "YYYY-MM-DD HH:MM UTC" when the module finished
    load: str = ""  # load averages "at start -> at end" of the module's run
    stale: str = ""  # set by the report writer when the section was not re-run (why, since when)
    module: str = ""  # the run.py key of the module that measured it (the report's section marker)


def to_dict(b: Benchmark) -> dict[str, Any]:
    return asdict(b)


def from_dict(d: dict[str, Any]) -> Benchmark:
    curves = [
        Curve(
            c["title"],
            c["x_label"],
            c["y_label"],
            {k: [(float(x), float(y)) for x, y in v] for k, v in c.get("series", {}).items()},
            c.get("png", ""),
        )
        for c in d.get("curves", [])
    ]
    known = {k: v for k, v in d.items() if k in Benchmark.__dataclass_fields__ and k != "curves"}
    return Benchmark(**known, curves=curves)


def write(path: Path, benchmarks: list[Benchmark]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([to_dict(b) for b in benchmarks], indent=1) + "\n")


def read(path: Path) -> list[Benchmark]:
    data = json.loads(path.read_text())
    items = data if isinstance(data, list) else [data]
    return [from_dict(d) for d in items]
