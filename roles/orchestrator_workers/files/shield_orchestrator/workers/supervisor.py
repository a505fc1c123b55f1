"""Named, supervised background tasks: a crashed loop is logged, counted and restarted.

Used by the pool for its fetcher, acker, lease, reclaim, heartbeat and flush loops: none of
them may die silently (a dead reclaim loop would leave a dead consumer's chunks pending).
The loops wait with :func:`sleep_or_stop`, so a stop request ends their pause at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shield_orchestrator.services.metrics import WorkerMetrics

log = logging.getLogger(__name__)


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


class Supervisor:
    """Runs loops as named tasks; restarts one that raises (after a growing pause)."""

    def __init__(self, metrics: WorkerMetrics, max_pause_s: float = 5.0) -> None:
        self.metrics = metrics
        self.max_pause_s = max_pause_s
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(name, loop), name=name)
        self.tasks[name] = task
        return task

    async def _run(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        pause = 0.1
        while True:
            try:
                await loop()
                return  # a loop that returns has finished its job (e.g. on shutdown)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.task_restarts.labels(task=name).inc()
                log.exception(
                    "background task %s crashed; restarting in %.1fs",
                    name,
                    pause,
                    extra={"action": "task_crashed", "task": name},
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause_s)

    async def stop(self, *names: str, timeout_s: float = 5.0) -> None:
        """Wait for the named tasks (all when none named) to end; cancel them at the timeout."""
        chosen = [self.tasks[n] for n in (names or tuple(self.tasks)) if n in self.tasks]
        if not chosen:
            return
        _done, pending = await asyncio.wait(chosen, timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def cancel(self, *names: str, timeout_s: float = 2.0) -> None:
        """Cancel the named tasks; a task still running ``timeout_s`` later is logged and left.

        Shutdown must not hang on a background loop: a redis-py command cancelled mid-flight
        can wait on its connection until the client is closed (which the pool does next).
        """
        chosen = [t for n in names if (t := self.tasks.get(n)) is not None and not t.done()]
        for task in chosen:
            task.cancel()
        if not chosen:
            return
        _done, stuck = await asyncio.wait(chosen, timeout=timeout_s)
        for task in stuck:
            log.warning(
                "background task %s did not stop within %.1fs; left to the close",
                task.get_name(),
                timeout_s,
                extra={"action": "task_cancel_timeout"},
            )
