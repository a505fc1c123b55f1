"""The producer protocol every peer script speaks with bench/bench_overhead.py (stdlib only).

The producer imports its library and connects, prints ``READY``, then reads commands on stdin:
``enqueue K`` enqueues K no-op tasks as fast as the library allows and answers one JSON line
``{"enqueued": K, "seconds": S}``; ``quit`` (or EOF) ends it. The worker side is the library's
own worker, started by the runner as separate processes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

# Concurrent enqueue calls in flight for asyncio producers (a window, not one by one).
WINDOW = 100


def _answer(n: int, seconds: float) -> None:
    print(json.dumps({"enqueued": n, "seconds": seconds}), flush=True)


def _command(line: str) -> int | None:
    parts = line.split()
    if not parts or parts[0] == "quit":
        return None
    if parts[0] != "enqueue" or len(parts) != 2:
        raise SystemExit(f"bad command {line!r}")
    return int(parts[1])


def use_uvloop() -> None:
    """Every asyncio peer runs on uvloop when its venv has it (the same for all)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def windowed(one: Callable[[], Awaitable[object]], n: int, window: int = WINDOW) -> None:
    """Call ``one()`` n times with at most ``window`` calls in flight."""
    done = 0
    while done < n:
        k = min(window, n - done)
        await asyncio.gather(*(one() for _ in range(k)))
        done += k


async def serve_async(
    enqueue: Callable[[int], Awaitable[None]],
    startup: Callable[[], Awaitable[None]] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    if startup is not None:
        await startup()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        n = _command(await loop.run_in_executor(None, sys.stdin.readline))
        if n is None:
            break
        t0 = time.perf_counter()
        await enqueue(n)
        _answer(n, time.perf_counter() - t0)
    if shutdown is not None:
        await shutdown()


def serve_sync(enqueue: Callable[[int], None]) -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        n = _command(line)
        if n is None:
            break
        t0 = time.perf_counter()
        enqueue(n)
        _answer(n, time.perf_counter() - t0)
