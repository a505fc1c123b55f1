"""The entries a pool holds in its consumer group: their leases, and the reclaim of others'.

    Leases     every reclaim_idle/3: XCLAIM ... JUSTID on every entry the pool holds (its idle
               time restarts and no delivery is counted), so no other consumer reclaims a chunk
               that is still running, however long it takes
    Reclaimer  every reclaim_idle/2: XAUTOCLAIM the entries idle >= reclaim_idle (a dead
               consumer's), as many as the pool has room for, and admit them as redelivered

Both get a ``Held``: the pool's consumer, its stream and its own map of the entries it holds
(entry id -> when it took them), which the pool fills as it admits entries and empties as its
acker records them; these parts only read it. Both run as named tasks under the pool's
Supervisor (workers/supervisor.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator.services import redis_streams
from shield_orchestrator.workers.supervisor import sleep_or_stop

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)


@dataclass(frozen=True, slots=True)
class Held:
    """The entries ``consumer`` holds in ``stream``: ``ids`` is the pool's live map."""

    redis: Redis
    stream: str
    consumer: str
    ids: Mapping[str, float]


class Leases:
    """Renews the lease of every held entry each reclaim_idle/3."""

    def __init__(self, held: Held, reclaim_idle_ms: int) -> None:
        self.held = held
        self.period_s = max(reclaim_idle_ms / 3000, 0.02)

    async def run(self, stopping: asyncio.Event) -> None:
        """Renew until ``stopping``: the pool sets it once its acker has recorded the last
        outcome (a chunk in its grace period keeps its lease), then cancels this loop."""
        h = self.held
        while not stopping.is_set():
            await asyncio.sleep(self.period_s)
            ids = list(h.ids)
            if not ids:
                continue
            try:
                owned = set(await redis_streams.renew_leases(h.redis, h.stream, h.consumer, ids))
            except _REDIS_ERRORS as exc:
                log.warning("lease renewal failed: %s", exc, extra={"action": "lease_failed"})
                continue
            lost = [i for i in ids if i not in owned and i in h.ids]
            if lost:
                log.info(
                    "lease lost on %d entries (acked or reclaimed)",
                    len(lost),
                    extra={"action": "lease_lost"},
                )


class Reclaimer:
    """Takes entries idle reclaim_idle (dead consumers') each reclaim_idle/2 and admits them."""

    def __init__(
        self,
        held: Held,
        reclaim_idle_ms: int,
        *,
        room: Callable[[], int],
        admit: Callable[[Sequence[redis_streams.Entry], bool], Awaitable[None]],
        reclaimed: Counter,
    ) -> None:
        """``room()``: how many entries the pool takes now; ``admit(entries, redelivered)``:
        the pool's admission; ``reclaimed``: the counter of reclaimed entries."""
        self.held, self.idle_ms = held, reclaim_idle_ms
        self.period_s = max(reclaim_idle_ms / 2000, 0.05)
        self.room, self.admit, self.reclaimed = room, admit, reclaimed

    async def run(self, stopping: asyncio.Event) -> None:
        """Reclaim until ``stopping`` (the pool stops reading)."""
        h, start = self.held, "0-0"
        while not stopping.is_set():
            await sleep_or_stop(stopping, self.period_s)
            free = self.room()
            if stopping.is_set() or free <= 0:
                continue
            try:
                start, entries, _deleted = await redis_streams.reclaim(
                    h.redis, h.stream, h.consumer, self.idle_ms, free, start
                )
            except _REDIS_ERRORS as exc:
                log.warning("reclaim failed: %s", exc, extra={"action": "reclaim_failed"})
                continue
            entries = [e for e in entries if e[0] not in h.ids]
            if entries:
                self.reclaimed.inc(len(entries))
                log.info("reclaimed %d idle entries", len(entries), extra={"action": "reclaimed"})
                await self.admit(entries, True)
