"""The ceiling: a bare XREADGROUP + XACK loop on one stream (redis-py asyncio + hiredis).

No framework, no processing: one pipelined round trip per batch (XACK of the previous batch +
the next XREADGROUP). Whatever a queue library does on top of this costs throughput.
Worker: ``python raw_peer.py worker``; producer: ``python raw_peer.py`` (bench/peers/_proto.py).
Env: BENCH_REDIS_URL, BENCH_BATCH (entries per XREADGROUP and per XADD pipeline).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import _proto
from redis.asyncio import Redis
from redis.exceptions import ResponseError

URL = os.environ["BENCH_REDIS_URL"]
STREAM = "bench:raw"
GROUP = "bench"
BATCH = int(os.environ.get("BENCH_BATCH", "500"))


async def worker() -> None:
    redis = Redis.from_url(URL)
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:  # BUSYGROUP: another process made it
        if "BUSYGROUP" not in str(exc):
            raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = f"raw-{os.getpid()}"
    ids: list[bytes] = []
    while not stop.is_set():
        pipe = redis.pipeline(transaction=False)
        if ids:
            pipe.xack(STREAM, GROUP, *ids)
        pipe.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=BATCH, block=200)
        reply = (await pipe.execute())[-1]
        ids = [entry_id for _, entries in reply or [] for entry_id, _ in entries]
    if ids:
        await redis.xack(STREAM, GROUP, *ids)
    await redis.aclose()


_client: list[Redis] = []


async def _startup() -> None:
    _client.append(Redis.from_url(URL))


async def _enqueue(n: int) -> None:
    redis = _client[0]
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        pipe = redis.pipeline(transaction=False)
        for _ in range(k):
            pipe.xadd(STREAM, {"data": "noop"})
        await pipe.execute()
        done += k


async def _shutdown() -> None:
    await _client[0].aclose()


def main() -> None:
    _proto.use_uvloop()
    if sys.argv[1:] == ["worker"]:
        asyncio.run(worker())
        return
    asyncio.run(_proto.serve_async(_enqueue, _startup, _shutdown))


if __name__ == "__main__":
    main()
