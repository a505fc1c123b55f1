"""Dramatiq with its Redis broker (RedisBroker), a no-op actor.

Worker: ``dramatiq dramatiq_peer --processes P --threads T`` (the runner starts it).
Producer: ``python dramatiq_peer.py`` speaks bench/peers/_proto.py; ``actor.send()`` per task,
the library's own enqueue (one Lua dispatch call per message). Dramatiq acknowledges a message
after the actor returns (at-least-once, like our pool); retries are off for the no-op.
Env: BENCH_REDIS_URL.
"""

from __future__ import annotations

import os

import _proto
import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"  # Redis keys dramatiq:bench (message ids) and dramatiq:bench.msgs (bodies)

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop() -> None:
    return None


def _enqueue(n: int) -> None:
    for _ in range(n):
        noop.send()


def main() -> None:
    _proto.serve_sync(_enqueue)


if __name__ == "__main__":
    main()
