"""Benchmarks that print their figures instead of writing BENCH_JSON: their output, read into
the report format (bench/result.py). The modules stay their owners'; only their printed
output is read here.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from bench import result

API_P99_GOAL_MS = 25.0


def _last_json_object(output: str) -> dict[str, object] | None:
    """The last top-level ``{...}`` block (lines "{" ... "}") of the output, parsed."""
    lines = output.splitlines()
    ends = [n for n, line in enumerate(lines) if line == "}"]
    if not ends:
        return None
    starts = [n for n, line in enumerate(lines[: ends[-1]]) if line == "{"]
    if not starts:
        return None
    try:
        data = json.loads("\n".join(lines[starts[-1] : ends[-1] + 1]))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def api(output: str) -> list[result.Benchmark]:
    """bench/bench_api.py: 202 latency at a fixed request rate from a second process."""
    d = _last_json_object(output)
    if d is None or "p99_ms" not in d:
        return []
    p99 = float(d["p99_ms"])  # type: ignore[arg-type]
    errors = d.get("errors") or {}
    rows: list[list[result.Cell]] = [
        ["offered rate (requests/s)", d.get("rate_req_s")],  # type: ignore[list-item]
        ["chunks per request", d.get("chunks_per_request")],  # type: ignore[list-item]
        ["requests sent / 202 accepted", f"{d.get('requests')} / {d.get('accepted')}"],
        ["202 latency p50 (ms)", d.get("p50_ms")],  # type: ignore[list-item]
        ["202 latency p90 (ms)", d.get("p90_ms")],  # type: ignore[list-item]
        ["202 latency p99 (ms)", p99],
        ["202 latency max (ms)", d.get("max_ms")],  # type: ignore[list-item]
        ["accepted chunks/s", d.get("accepted_chunks_per_s")],  # type: ignore[list-item]
        ["errors", json.dumps(errors) if errors else "none"],
    ]
    offered = float(d.get("rate_req_s") or 0) * float(d.get("chunks_per_request") or 0)  # type: ignore[arg-type]
    accepted = float(d.get("accepted_chunks_per_s") or 0)  # type: ignore[arg-type]
    return [
        result.Benchmark(
            key="api",
            title="API: 202 latency and accepted chunks/s at a fixed request rate",
            goal=f"p99 <= {API_P99_GOAL_MS:.0f} ms at 100 requests/s of 100 chunks",
            columns=["measure", "value"],
            rows=rows,
            goal_met=p99 <= API_P99_GOAL_MS and not errors,
            ratio=round(p99 / API_P99_GOAL_MS, 3),
            ratio_label="p99 ÷ 25 ms goal",
            baseline="the goal itself (latency is absolute); accepted ÷ offered chunks/s = "
            + (f"{accepted / offered:.3f}" if offered else "–"),
            limits="open-loop load: when the API accepts fewer chunks/s than offered, requests "
            "queue and the latency grows with the run; on 2 shared cores the API process, "
            "the load generator, Redis and PostgreSQL compete for CPU.",
            notes=[
                "Figures printed by bench/bench_api.py (the API engineer's module), read "
                "into this table by bench/adapters.py."
            ],
        )
    ]


# run.py key -> reader of that module's printed output
ADAPTERS: dict[str, Callable[[str], list[result.Benchmark]]] = {"api": api}
