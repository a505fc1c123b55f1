"""Consumer-group helpers (services/redis_streams.py) on a real Redis 7."""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator import keys
from shield_orchestrator.services import redis_streams

pytestmark = pytest.mark.integration

STREAM = keys.ingestion_stream(keys.WORKSPACES[0])


async def _add(redis: Any, n: int) -> list[str]:
    return [await redis.xadd(STREAM, {"i": str(i)}) for i in range(n)]


async def test_group_reads_entries_added_before_it_existed(redis_client: Any) -> None:
    ids = await _add(redis_client, 3)
    assert await redis_streams.ensure_group(redis_client, STREAM) is True
    assert await redis_streams.ensure_group(redis_client, STREAM) is False  # BUSYGROUP is fine
    got = await redis_streams.read_group(redis_client, STREAM, "c:1", 10, 10)
    assert [i for i, _f in got] == ids
    assert got[0][1] == {"i": "0"}


async def test_own_pending_pages_and_counts_a_delivery(redis_client: Any) -> None:
    await redis_streams.ensure_group(redis_client, STREAM)
    ids = await _add(redis_client, 5)
    await redis_streams.read_group(redis_client, STREAM, "c:1", 5, None)
    page1 = await redis_streams.read_group(redis_client, STREAM, "c:1", 2, None, start="0")
    page2 = await redis_streams.read_group(
        redis_client, STREAM, "c:1", 10, None, start=page1[-1][0]
    )
    assert [i for i, _ in page1 + page2] == ids
    assert await redis_streams.read_group(redis_client, STREAM, "c:2", 10, None, start="0") == []
    counts = await redis_streams.delivery_counts(redis_client, STREAM, [ids[0], "0-1"])
    assert counts == {ids[0]: 2}  # rereading the PEL counted a delivery; "0-1" is not pending


async def test_reclaim_takes_idle_entries_and_reports_deleted_ones(redis_client: Any) -> None:
    await redis_streams.ensure_group(redis_client, STREAM)
    ids = await _add(redis_client, 3)
    await redis_streams.read_group(redis_client, STREAM, "dead:1", 3, None)
    await redis_client.xdel(STREAM, ids[1])
    _next, entries, deleted = await redis_streams.reclaim(redis_client, STREAM, "alive:1", 0, 10)
    assert [i for i, _ in entries] == [ids[0], ids[2]]
    assert deleted == [ids[1]]
    _next, entries, _deleted = await redis_streams.reclaim(redis_client, STREAM, "x:1", 60_000, 10)
    assert entries == []  # nothing idle that long


async def test_group_state_reports_pending_and_lag(redis_client: Any) -> None:
    assert await redis_streams.group_state(redis_client, STREAM) is None
    await redis_streams.ensure_group(redis_client, STREAM)
    await _add(redis_client, 4)
    await redis_streams.read_group(redis_client, STREAM, "c:1", 1, None)
    state = await redis_streams.group_state(redis_client, STREAM)
    assert state is not None
    assert (state.pending, state.lag, state.consumers, state.length) == (1, 3, 1, 4)


async def test_take_over_makes_every_pending_entry_the_new_owners(redis_client: Any) -> None:
    await redis_streams.ensure_group(redis_client, STREAM)
    ids = await _add(redis_client, 7)
    await redis_streams.read_group(redis_client, STREAM, "old:1", 4, None)
    await redis_streams.read_group(redis_client, STREAM, "old:2", 2, None)  # 1 stays undelivered
    assert await redis_streams.take_over(redis_client, STREAM, "new:1", page=2) == 6
    rows = await redis_client.xpending_range(STREAM, keys.CONSUMER_GROUP, "-", "+", 10)
    assert [(r["message_id"], r["consumer"]) for r in rows] == [(i, "new:1") for i in ids[:6]]
    assert {r["times_delivered"] for r in rows} == {1}  # JUSTID: the reread counts the delivery
    mine = await redis_streams.read_group(redis_client, STREAM, "new:1", 10, None, start="0")
    assert [i for i, _ in mine] == ids[:6]
