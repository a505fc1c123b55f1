"""bench/bench_workspaces.py at a tiny size: the figures it reports come from runs whose counts
are exact and whose workspaces never cross.

Real worker processes (the sleeping engine under the workspace lease, and the unchanged
offline worker on PostgreSQL storages), real Redis and PostgreSQL, 4 declared workspaces and 2
processes owning 1 each: 2 workspaces served, every chunk of theirs processed exactly once and
only by its own workspace's engine, the other 2 waiting with every chunk still queued; one
SIGKILLed owner handed over, its job completed with exact counts. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_workspaces as bw
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.acceptance

N = 24
OFFLINE_N = 3


async def test_the_workspaces_benchmark_counts_exactly_and_keeps_workspaces_apart(
    rendered_root: Path, redis_srv: RedisServer, postgres_srv: PostgresServer, tmp_path: Path
) -> None:
    cells, offline, hand = await bw.run_all(
        rendered_root, redis_srv, postgres_srv, tmp_path / "trees", tmp_path,
        n=N, offline_n=OFFLINE_N, samples=1, procs=(2,), per_process=(1,),
    )  # fmt: skip
    for cell, n in [(cells[0], N), (offline[0], OFFLINE_N)]:
        assert len(cell.served) == 2, cell
        waiting = [ws for ws in bw.WORKSPACES if ws not in cell.served]
        assert cell.processed == {ws: n for ws in cell.served}, cell
        # each served workspace's chunks reached its own engine only, once each (no kill here);
        # the waiting workspaces' chunks reached no engine and are all still queued
        assert cell.routing == {ws: {ws: n} for ws in cell.served} | {ws: {} for ws in waiting}
        assert cell.waiting_ok, cell
        assert cell.chunks == 2 * n
        assert bw._cell_ok(cell, n)
    assert hand is not None
    assert len(hand.samples) == 1
    assert hand.samples[0] > 0
    assert (hand.processed, hand.failed, hand.seen, hand.dead, hand.pending) == (
        hand.chunks, 0, hand.chunks, 0, 0)  # fmt: skip
    bench = bw.benchmark(cells, offline, hand, N, OFFLINE_N, 1.0)
    assert [row[9] for row in bench.rows] == ["yes", "yes"]
