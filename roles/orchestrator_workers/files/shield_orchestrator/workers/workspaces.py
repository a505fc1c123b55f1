"""One worker process: which workspaces it serves, a WorkerPool for each, the process's loops.

Every workspace has its own ingestion stream (keys.ingestion_stream), so a chunk reaches only a
process serving its workspace. How a process picks its workspaces depends on the engine:

- single writer (engines/factory.SINGLE_WRITER: LightRAG in-process). LightRAG allows one
  writer per workspace storage, so a workspace is served by the one process that holds its
  lease (engines/workspace_lock.py: fleet-wide for PostgreSQL storages, per host for files).
  Every OWNERSHIP_PERIOD_S the process (the ``ownership`` loop):

      reaps its pools that ended (max tasks -> the process stops; lease lost -> pool stopped)
      target = min(workspaces_per_process, ceil(workspaces / live processes in the scope))
      owns more than target, or 2+ more than the least loaded live process -> releases one
          (its pool drains: in-flight chunks finish, the rest stays pending; then the lease
          is freed, so another process takes it within one period)
      owns fewer than target -> tries each free workspace: the engine's start takes the lease
          (SET NX, no wait) or refuses at once (WorkspaceBusyError); a taken workspace gets a
          pool made with take_over=True: the previous owner's pending entries first

  An owner that dies (SIGKILL, host down) stops renewing: its lease expires after the TTL and
  a live process of the scope takes the workspace over. Extra processes are hot standbys.
- other engines (lightrag_server, noop) keep no graph in the process: every process serves
  every declared workspace (a pool per workspace, all reading through the one group); the
  ``ownership`` loop only reaps pools that ended (max tasks per child stops the process).

Each served workspace also answers its queries (POST /lightrag/query, services/query_server.py)
with its engine: the owner reads the graph it writes, so no second writer (or reader with its
own LightRAG state) exists; that loop and the pool stop reading at the same moment.

Process-wide, under the Supervisor: the heartbeat (workers/heartbeat.py; keys.worker: counters
summed over the pools, and which workspaces it serves since when), the write-behind flusher
(workers/flusher.py), the metrics server.
Shutdown (SIGTERM/SIGINT or max tasks): ownership stops; every pool drains at once (its own
sequence, workers/worker_pool.py) and its engine closes, freeing the lease; final flush;
worker.stopped event; heartbeat removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator import keys
from shield_orchestrator.engines.base import Engine
from shield_orchestrator.engines.workspace_lock import WorkspaceBusyError
from shield_orchestrator.services import heartbeat, redis_streams
from shield_orchestrator.services.job_tracker import JobTracker, TrackerConfig
from shield_orchestrator.services.metrics import MetricsServer, WorkerMetrics
from shield_orchestrator.services.query_server import serve_queries
from shield_orchestrator.services.retry import describe
from shield_orchestrator.workers.defaults import WORKSPACES_PER_PROCESS
from shield_orchestrator.workers.flusher import Flusher
from shield_orchestrator.workers.heartbeat import Heartbeat
from shield_orchestrator.workers.supervisor import Supervisor, sleep_or_stop
from shield_orchestrator.workers.worker_pool import PoolConfig, WorkerPool

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)
OWNERSHIP_PERIOD_S = 1.0  # how often a process looks for free workspaces (hand-over latency)
LIVE_BEATS = 3  # a process is live while its heartbeat is younger than this many intervals


@runtime_checkable
class LeasedEngine(Protocol):
    """A single-writer engine that knows when its workspace lease went to another process."""

    @property
    def lease_lost(self) -> bool: ...


class WorkspacePools:
    """``await WorkspacePools(...).run()`` until request_stop() (see the module doc)."""

    def __init__(
        self,
        redis: Redis,
        make_engine: Callable[[str], Engine],
        config: PoolConfig,
        consumer: str,
        db_factory: Callable[[], Awaitable[Any]] | None = None,
        *,
        engine_name: str,
        single_writer: bool,
        workspaces: Sequence[str] = keys.WORKSPACES,
        per_process: int = WORKSPACES_PER_PROCESS,
        per_host: bool = False,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        """``make_engine(workspace)`` builds a not yet started engine for one workspace;
        ``per_host``: the leases are per host (file storages), so only this host's processes
        share its workspaces; else fleet-wide."""
        self.redis, self.make_engine, self.config, self.consumer = (
            redis, make_engine, config, consumer)  # fmt: skip
        self.engine_name, self.single_writer = engine_name, single_writer
        self.declared = tuple(workspaces)
        self.per_process, self.per_host = max(per_process, 1), per_host
        self.metrics = metrics or WorkerMetrics()
        self.tracker = JobTracker(
            redis,
            TrackerConfig(config.job_status_ttl_s, config.flush_interval_s, config.flush_max_jobs),
        )
        self.rate = heartbeat.RateMeter()
        self.supervisor = Supervisor(self.metrics)
        self.stopping = asyncio.Event()
        self.stop_reason = ""
        self.pools: dict[str, WorkerPool] = {}
        self._runs: dict[str, asyncio.Task[str]] = {}
        self._since: dict[str, float] = {}
        # per served workspace: the loop answering its queries (services/query_server.py) with
        # its engine, and the event that stops it (before the engine closes)
        self._queries: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._ended = [0, 0]  # processed, failed of the pools that ended
        self.abandoned: list[str] = []
        self.started_at = time.time()
        self._metrics_server: MetricsServer | None = None
        self.flusher = Flusher(
            redis, self.tracker, db_factory, self.metrics, config.flush_interval_s
        )
        self.heartbeat = Heartbeat(
            redis, consumer, config.health_check_interval_s, self, self.rate, self.metrics
        )

    # --- what the heartbeat reads (workers/heartbeat.Counters) ------------------------------

    @property
    def processed(self) -> int:
        return self._ended[0] + sum(p.processed for p in self.pools.values())

    @property
    def failed(self) -> int:
        return self._ended[1] + sum(p.failed for p in self.pools.values())

    @property
    def running(self) -> int:
        return sum(p.running for p in self.pools.values())

    @property
    def streams(self) -> list[str]:
        return [p.stream for p in self.pools.values()]

    @property
    def workspaces(self) -> dict[str, float]:
        return dict(self._since)

    def request_stop(self, reason: str = "signal") -> None:
        """Ask the process to stop (safe from a signal handler: it only sets an event)."""
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    # --- run ----------------------------------------------------------------------------------

    async def run(self) -> str:
        """Serve until stopped; returns the reason (``signal``, ``max_tasks``...)."""
        await self.tracker.load()
        moved = await redis_streams.adopt_legacy_stream(self.redis, self.declared[0])
        if moved:
            log.warning(
                "moved %d entries of the old single stream %s to their workspaces' streams",
                moved,
                keys.INGESTION_STREAM,
                extra={"action": "legacy_stream_adopted"},
            )
        if self.config.metrics_port:
            self._metrics_server = MetricsServer(self.metrics, port=self.config.metrics_port)
            await self._metrics_server.start()
        self.started_at = time.time()
        await self.heartbeat.started(workspaces=sorted(self.pools))
        if not self.single_writer:
            for ws in self.declared:
                await self._serve(ws, take_over=False)
        self.supervisor.start("heartbeat", lambda: self.heartbeat.run(self.stopping))
        self.supervisor.start("flusher", lambda: self.flusher.run(self.stopping))
        self.supervisor.start("ownership", self._ownership_loop)
        log.info(
            "worker %s started: engine %s, %s",
            self.consumer,
            self.engine_name,
            f"owns up to {self.per_process} of {len(self.declared)} workspaces"
            if self.single_writer
            else f"serves all {len(self.declared)} workspaces",
            extra={"action": "worker_started"},
        )
        await self.stopping.wait()
        await self._shutdown()
        return self.stop_reason

    # --- ownership ----------------------------------------------------------------------------

    async def _serve(self, workspace: str, take_over: bool) -> bool:
        """Start the workspace's engine (a single writer takes the lease) and its pool."""
        engine = self.make_engine(workspace)
        try:
            await engine.start()
        except WorkspaceBusyError:
            return False  # another process owns it (the engine released what it opened)
        except Exception as exc:
            log.warning(
                "workspace %r: engine did not start: %s",
                workspace,
                describe(exc),
                extra={"action": "workspace_start_failed"},
            )
            with contextlib.suppress(Exception):
                await engine.close()
            return False
        pool = WorkerPool(
            self.redis,
            engine,
            self.config,
            self.consumer,
            None,
            self.metrics,
            workspace=workspace,
            standalone=False,
            take_over=take_over,
            rate=self.rate,
        )
        self.pools[workspace] = pool
        self._since[workspace] = time.time()
        self._runs[workspace] = asyncio.create_task(
            pool.run(start_engine=False), name=f"workspace-{workspace}"
        )
        stop = asyncio.Event()
        answering = serve_queries(self.redis, workspace, self.consumer, engine.query, stop)
        self._queries[workspace] = (stop, asyncio.create_task(answering, name=f"q-{workspace}"))
        if self.single_writer:
            log.info(
                "workspace %r: owned by %s now",
                workspace,
                self.consumer,
                extra={"action": "workspace_owned"},
            )
        return True

    async def _ownership_loop(self) -> None:
        while not self.stopping.is_set():
            changed = await self._reap()
            if not self.single_writer:  # it serves every workspace: only reaps
                await sleep_or_stop(self.stopping, OWNERSHIP_PERIOD_S)
                continue
            target, fewest = await self._balance()
            owned = sorted(self.pools)
            if owned and (len(owned) > target or len(owned) - fewest >= 2):
                await self._release(owned[-1], "rebalance")
                changed = True
            elif len(owned) < target:
                free = [ws for ws in self.declared if ws not in self.pools]
                random.shuffle(free)  # processes starting together spread over the workspaces
                for ws in free:
                    if len(self.pools) >= target or self.stopping.is_set():
                        break
                    changed |= await self._serve(ws, take_over=True)
            if changed:
                await self.heartbeat.beat("running")  # others balance against it at once
            await sleep_or_stop(self.stopping, OWNERSHIP_PERIOD_S)

    async def _reap(self) -> bool:
        """Forget pools that ended; stop those whose lease went to another process."""
        changed = False
        for ws, task in list(self._runs.items()):
            pool = self.pools[ws]
            if isinstance(pool.engine, LeasedEngine) and pool.engine.lease_lost:
                pool.request_stop("lease_lost")
                await self._stop_queries(ws)
            if not task.done():
                continue
            changed = True
            await self._stop_queries(ws)
            self._forget(ws)
            if task.cancelled():
                continue
            if (exc := task.exception()) is not None:
                log.error(
                    "workspace %r: pool failed: %s",
                    ws,
                    describe(exc),
                    extra={"action": "workspace_pool_failed"},
                )
            elif task.result() == "max_tasks":
                self.request_stop("max_tasks")
        return changed

    def _stop_reading(self) -> None:
        """Every pool and query loop stops reading (idempotent; each drains on its own)."""
        for stop, _task in self._queries.values():
            stop.set()
        for pool in self.pools.values():
            pool.request_stop(self.stop_reason)

    async def _stop_queries(self, workspace: str) -> None:
        """Stop answering the workspace's queries (in-flight answers get their grace)."""
        if workspace not in self._queries:
            return
        stop, task = self._queries.pop(workspace)
        stop.set()
        with contextlib.suppress(Exception):
            await task

    def _forget(self, workspace: str) -> None:
        pool = self.pools.pop(workspace)
        self._runs.pop(workspace, None)
        self._since.pop(workspace, None)
        self._ended[0] += pool.processed
        self._ended[1] += pool.failed
        self.abandoned += pool.abandoned

    async def _release(self, workspace: str, reason: str) -> None:
        """Drain the workspace's pool; its engine closes and frees the lease."""
        pool, task = self.pools[workspace], self._runs[workspace]
        # both stop reading now; the queries end within their grace, in-flight chunks within
        # theirs, and the engine closes only after the chunks (the pool's own sequence)
        self._queries[workspace][0].set()
        pool.request_stop(reason)
        await self._stop_queries(workspace)
        budget = self.config.graceful_shutdown_timeout_s + 3 * self.config.hard_deadline_s + 15
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), budget)
        self._forget(workspace)
        log.info(
            "workspace %r: released by %s (%s)",
            workspace,
            self.consumer,
            reason,
            extra={"action": "workspace_released"},
        )

    async def _balance(self) -> tuple[int, int]:
        """(target, fewest): how many workspaces this process should own, and the fewest a
        live process of the scope owns (from the heartbeats; this process counts too)."""
        try:
            beats = await heartbeat.read_workers(self.redis)
        except _REDIS_ERRORS:
            return len(self.pools), len(self.pools)  # keep what it has
        fresh = time.time() - LIVE_BEATS * self.config.health_check_interval_s
        host = self.consumer.rpartition(":")[0]  # consumer = host:instance
        owned = {b.consumer: len(b.workspaces) for b in beats if b.last_seen >= fresh
                 and (not self.per_host or b.consumer.rpartition(":")[0] == host)}  # fmt: skip
        owned[self.consumer] = len(self.pools)
        target = min(self.per_process, math.ceil(len(self.declared) / len(owned)))
        return target, min(owned.values())

    # --- shutdown -----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        log.info("stopping (%s)", self.stop_reason, extra={"action": "worker_stopping"})
        self._stop_reading()  # at once: no chunk starts after the signal
        await self.supervisor.stop("ownership", timeout_s=self.config.graceful_shutdown_timeout_s
                                   + 3 * self.config.hard_deadline_s + 20)  # fmt: skip
        self._stop_reading()  # a pool the ownership loop started meanwhile
        for ws in list(self._queries):
            await self._stop_queries(ws)
        tasks = list(self._runs.values())
        if tasks:
            budget = self.config.graceful_shutdown_timeout_s + 3 * self.config.hard_deadline_s
            await asyncio.wait(tasks, timeout=budget)
        left = sum(len(p.released) for p in self.pools.values())
        for ws in list(self.pools):
            self._forget(ws)
        await self.supervisor.cancel("heartbeat", "flusher")
        await self.flusher.drain()  # the write-behind, until nothing is dirty or PostgreSQL fails
        await self.heartbeat.stopped(self.stop_reason, left, workspaces=sorted(self.pools))
        await self.close()

    async def close(self) -> None:
        """Close the metrics server and the PostgreSQL pool (idempotent)."""
        if self._metrics_server is not None:
            await self._metrics_server.close()
            self._metrics_server = None
        await self.flusher.close()
