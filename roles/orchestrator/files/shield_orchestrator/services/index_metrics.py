"""Repository indexing counters of /metrics, derived from PostgreSQL at each scrape.

The indexer's tables are the record of what runs did (indexing/runs.py), so the counters are
read from them, never counted in a process: several API processes answer /metrics
(api/telemetry.py), and a count kept in one of them would drift from the others and from
the truth. One statement (:data:`SNAPSHOT_SQL`, a few grouped scans of the run tables) gives
a :class:`Snapshot`; :class:`IndexCounters` yields the last one as Prometheus families::

    shield_index_runs_total{outcome}              runs by outcome (planned = still running)
    shield_index_files_total{outcome,reason}      indexed (completed | empty),
                                                  failed (failed | completed_with_errors),
                                                  skipped (the skip reason, indexing/plan.py)
    shield_index_documents_deleted_total          documents taken out of the graph
    shield_index_run_duration_seconds{outcome}    finished runs, plan to outcome (histogram)
    shield_index_repositories_quarantined         gauge: registered repositories (branches)
                                                  quarantined (indexing/health.py)
    shield_index_consecutive_failures_max         gauge: the most consecutive failed runs of a
                                                  registered repository (0: none failing)

What they count: a run is a row of ``repo_index_runs`` (made when the run planned: a run that
failed before, at fetch, counts in the repository's failures, indexing/health.py, not here);
a file outcome is a changed file of a run once its ingestion job is terminal (files still
queued are not counted yet); skipped files are counted at each run that planned them (a
skip decision per run); deleted documents are the chunk documents of the (path, blob sha)
rows of ``repo_doc_deletions`` marked deleted. The two gauges are the current state of the
registered repositories (``repo_index_state`` joined to ``repositories``: an unregistered
repository's leftover state row never alerts); the alert rules
(collections/.../monitoring/alerts.yml) read them. The tables are never pruned, so the values
only grow; before the first successful read a process exposes none of these families (a
0 would read as a counter reset).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# seconds: an incremental run of a few files takes seconds, a first run of a large tree hours
RUN_DURATION_BUCKETS_S = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)

INDEXED_STATES = {"completed": "indexed", "empty": "indexed"}
FAILED_STATES = {"failed": "failed", "completed_with_errors": "failed"}

# kind | name | bucket | n | sum_s. bucket: how many bounds lie below the run's duration,
# so the run counts in every bucket from that index on (le is inclusive, as in Prometheus).
SNAPSHOT_SQL = """
SELECT 'run' AS kind, status AS name, 0 AS bucket, count(*) AS n, 0::float8 AS sum_s
FROM repo_index_runs GROUP BY status
UNION ALL
SELECT 'file', state, 0, count(*), 0 FROM repo_run_files
WHERE change <> 'removed' AND state = ANY($2::text[]) GROUP BY state
UNION ALL
SELECT 'skipped', s.key, 0, sum(s.value::bigint), 0
FROM repo_index_runs AS r, jsonb_each_text(r.skipped) AS s GROUP BY s.key
UNION ALL
SELECT 'deleted', '', 0, coalesce(sum(j.chunks_total), 0), 0
FROM repo_doc_deletions AS d JOIN jobs AS j ON j.job_id = d.job_id WHERE d.state = 'deleted'
UNION ALL
SELECT 'duration', status, bucket, count(*), sum(duration_s)
FROM (SELECT status, extract(epoch FROM finished_at - created_at)::float8 AS duration_s
      FROM repo_index_runs WHERE finished_at IS NOT NULL) AS runs,
     LATERAL (SELECT count(*)::int AS bucket FROM unnest($1::float8[]) AS b
              WHERE b < runs.duration_s) AS below
GROUP BY status, bucket
UNION ALL
SELECT 'repos', 'quarantined', 0, count(*) FILTER (WHERE s.quarantined_at IS NOT NULL), 0
FROM repo_index_state AS s JOIN repositories AS r ON r.repo_id::text = s.repo
                                                 AND r.branch = s.branch
UNION ALL
SELECT 'repos', 'failures_max', 0, coalesce(max(s.consecutive_failures), 0), 0
FROM repo_index_state AS s JOIN repositories AS r ON r.repo_id::text = s.repo
                                                 AND r.branch = s.branch"""


@dataclass
class Durations:
    """Finished runs of one outcome: per-bucket counts (not cumulative) and their sum."""

    per_bucket: list[int] = field(default_factory=lambda: [0] * (len(RUN_DURATION_BUCKETS_S) + 1))
    sum_s: float = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, count of runs <= le) for each bound and +Inf, as Prometheus wants them."""
        out, running = [], 0
        for n, bound in enumerate((*RUN_DURATION_BUCKETS_S, float("inf"))):
            running += self.per_bucket[n]
            out.append(("+Inf" if bound == float("inf") else f"{bound:g}", float(running)))
        return out


@dataclass
class Snapshot:
    runs: dict[str, int] = field(default_factory=dict)  # outcome -> runs
    files: dict[tuple[str, str], int] = field(default_factory=dict)  # (outcome, reason) -> n
    documents_deleted: int = 0
    repos_quarantined: int = 0
    consecutive_failures_max: int = 0
    durations: dict[str, Durations] = field(default_factory=dict)  # outcome -> histogram


async def read_snapshot(db: Any) -> Snapshot:
    """The counters as the indexer's tables hold them now (one statement)."""
    states = [*INDEXED_STATES, *FAILED_STATES]
    rows = await db.fetch(SNAPSHOT_SQL, list(RUN_DURATION_BUCKETS_S), states)
    snap = Snapshot()
    for row in rows:
        kind, name, n = row["kind"], row["name"], int(row["n"])
        if kind == "run":
            snap.runs[name] = n
        elif kind == "file":
            snap.files[(INDEXED_STATES.get(name) or FAILED_STATES[name], name)] = n
        elif kind == "skipped":
            snap.files[("skipped", name)] = n
        elif kind == "deleted":
            snap.documents_deleted = n
        elif kind == "repos" and name == "quarantined":
            snap.repos_quarantined = n
        elif kind == "repos":
            snap.consecutive_failures_max = n
        else:
            hist = snap.durations.setdefault(name, Durations())
            hist.per_bucket[int(row["bucket"])] += n
            hist.sum_s += float(row["sum_s"])
    return snap


class IndexCounters(Collector):
    """The indexing families as of the last :meth:`refresh` (none before the first)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    async def refresh(self, db: Any) -> None:
        self.snapshot = await read_snapshot(db)

    def describe(self) -> Iterator[Metric]:
        """The families' names, for the registry's duplicate check (values come later)."""
        yield from self._families(Snapshot())

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from self._families(self.snapshot)

    @staticmethod
    def _families(snap: Snapshot) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "shield_index_runs", "Repository indexing runs by outcome (planned: running).",
            labels=("outcome",),
        )  # fmt: skip
        for outcome, n in sorted(snap.runs.items()):
            runs.add_metric((outcome,), n)
        yield runs
        files = CounterMetricFamily(
            "shield_index_files",
            "Files of indexing runs by outcome (indexed, failed, skipped) and reason.",
            labels=("outcome", "reason"),
        )
        for (outcome, reason), n in sorted(snap.files.items()):
            files.add_metric((outcome, reason), n)
        yield files
        yield CounterMetricFamily(
            "shield_index_documents_deleted",
            "Documents of removed, modified and renamed files taken out of the graph.",
            value=snap.documents_deleted,
        )
        durations = HistogramMetricFamily(
            "shield_index_run_duration_seconds",
            "Finished indexing runs' time from plan to outcome, by outcome.",
            labels=("outcome",),
        )
        for outcome, hist in sorted(snap.durations.items()):
            durations.add_metric((outcome,), hist.cumulative(), hist.sum_s)
        yield durations
        yield GaugeMetricFamily(
            "shield_index_repositories_quarantined",
            "Registered repositories (branches) quarantined: no run without force.",
            value=snap.repos_quarantined,
        )
        yield GaugeMetricFamily(
            "shield_index_consecutive_failures_max",
            "The most consecutive failed index runs of a registered repository (branch).",
            value=snap.consecutive_failures_max,
        )
