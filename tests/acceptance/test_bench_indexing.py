"""bench/bench_indexing.py at a tiny size: the counts it reports are the change set's.

The benchmark's own code end to end, 20 generated files and 3 changed (one modified, one
removed, one added): a real Temporal dev server, Redis and PostgreSQL, the indexer and one
worker process (engine ``lightrag``) against the recording Ollama double. The re-index
re-ingests the modified and added files, deletes the modified and removed files' documents
(and exactly their LightRAG documents), LightRAG's document set equals the manifest after
each run, and a third trigger finds the head indexed. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_indexing as bi
from tests.support.servers import PostgresServer, RedisServer
from tests.support.temporal import TemporalServer, temporal_srv

pytestmark = pytest.mark.acceptance
__all__ = ["temporal_srv"]  # the session fixture, used by name

FILES = 20
CHANGES = 3


async def test_the_indexing_benchmark_counts_the_change_set(
    rendered_root: Path,
    redis_srv: RedisServer,
    postgres_srv: PostgresServer,
    temporal_srv: TemporalServer,
    tmp_path: Path,
) -> None:
    logdir = tmp_path / "logs"
    logdir.mkdir()
    outcome = await bi.run_indexing(
        rendered_root, redis_srv, postgres_srv, temporal_srv, tmp_path / "work", logdir,
        files=FILES, changes=CHANGES, seed=bi.SEED,
    )  # fmt: skip
    cs = outcome.changes
    assert (len(cs.modified), len(cs.removed), len(cs.added)) == (1, 1, 1)
    full, re_run, idle = outcome.runs
    assert (full.outcome, full.jobs, full.deleted, full.failed) == ("completed", FILES, 0, 0)
    assert full.docs_added == outcome.chunks
    assert full.extract_known == 0  # nothing extracted before the first run
    assert (re_run.outcome, re_run.changed, re_run.jobs, re_run.deleted) == ("completed", 3, 2, 2)
    assert re_run.paths == {cs.modified[0]: "modified", cs.removed[0]: "removed",
                            cs.added[0]: "added"}  # fmt: skip
    assert re_run.docs_deleted == outcome.expected_deleted_docs
    assert re_run.docs_added == outcome.expected_new_chunks + outcome.expected_unchanged_chunks
    assert outcome.expected_unchanged_chunks >= 1  # the modified file kept its first function
    # one extraction call per chunk of new text; the unchanged function's chunk costs none:
    # LightRAG's extraction cache answers it (engines/lightrag_setup.build_rag)
    assert re_run.extract_new == outcome.expected_new_chunks
    assert re_run.extract_known == 0
    assert (idle.outcome, idle.jobs, idle.docs_added, idle.docs_deleted, idle.chat) == (
        "up_to_date", 0, 0, 0, 0,
    )  # fmt: skip
    assert all(r.docs_match_manifest for r in outcome.runs)
    checks = bi.counts_ok(outcome)
    assert all(checks.values()), checks
    bench = bi.benchmark(outcome, 1.0)
    assert [row[0] for row in bench.rows] == ["full", "re-index", "no change"]
