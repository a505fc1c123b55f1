"""``python -m shield_orchestrator.indexing.worker``: one indexer process (a Temporal worker).

It polls the ``repo-indexing`` task queue for the workflow and its activities. Redis,
PostgreSQL and Temporal (address, namespace, task queue, the paths of the TLS client files)
come from the Settings, the same the API's POST /repos/{id}/index reads (indexing/client.py);
--temporal, --namespace and --task-queue override them (tests, one-off runs). The mirror
cache and the grace from the command line (roles/orchestrator_indexer's unit). Several
processes, on one host or several, may poll the same queue.

Shutdown (SIGTERM or SIGINT only set an event)::

    stop polling; in-flight activities get up to --graceful-shutdown-s to finish
    then they are cancelled (an activity sees it at its next heartbeat) and the worker ends
    close the PostgreSQL pool and Redis, log ``indexer_stopped``, exit 0

Exit status: 0 after a clean stop, 1 when it could not start or run, 2 on a config error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from shield_orchestrator.database.pool import create_pool
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.indexing.activities import IndexerConfig, IndexingActivities
from shield_orchestrator.indexing.client import TemporalTarget, connect
from shield_orchestrator.indexing.runner import CommandActivities
from shield_orchestrator.indexing.workflow import TASK_QUEUE, RepoIndexingWorkflow
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.settings import Settings, load_settings

DEFAULT_CACHE_DIR = Path("/var/cache/shield-orchestrator/mirrors")
GRACEFUL_SHUTDOWN_S = 60.0  # in-flight activities' time to finish after SIGTERM
MAX_ACTIVITIES = 4  # concurrent activities per process (persist_kg mostly waits)

log = logging.getLogger("shield_orchestrator.indexing")


def build_worker(
    client: Client,
    activities: IndexingActivities,
    *,
    task_queue: str = TASK_QUEUE,
    graceful_shutdown_s: float = GRACEFUL_SHUTDOWN_S,
    max_activities: int = MAX_ACTIVITIES,
) -> Worker:
    """The Temporal worker of the indexing workflow and all its activities (run_repo_command,
    the operator's command, from runner.py: on the same mirrors and pool)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RepoIndexingWorkflow],
        activities=[*activities.all(), *CommandActivities(activities.db, activities.mirrors).all()],
        max_concurrent_activities=max_activities,
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_s),
    )


def temporal_target(settings: Settings, args: argparse.Namespace) -> TemporalTarget:
    """The Settings' Temporal target with the command line's overrides applied."""
    target = TemporalTarget.from_settings(settings)
    return dataclasses.replace(
        target,
        address=args.temporal or target.address,
        namespace=args.namespace or target.namespace,
        task_queue=args.task_queue or target.task_queue,
    )


async def serve(settings: Settings, args: argparse.Namespace, target: TemporalTarget) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # only sets an event
    client: Client = await connect(target)  # plaintext unless the Settings name TLS files
    redis = create_redis(settings, max_connections=8)
    db = await create_pool(settings, min_size=1, max_size=4)
    try:
        activities = IndexingActivities(redis, db, IndexerConfig(cache_dir=args.cache_dir))
        worker = build_worker(client, activities, task_queue=target.task_queue,
                              graceful_shutdown_s=args.graceful_shutdown_s)  # fmt: skip
        running = asyncio.create_task(worker.run(), name="indexer-worker")
        log.info("indexer polling %s on %s", target.task_queue, target.address,
                 extra={"action": "indexer_started"})  # fmt: skip
        stopped = asyncio.create_task(stop.wait(), name="indexer-stop")
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("stopping: in-flight activities get %.0f s", args.graceful_shutdown_s,
                     extra={"action": "indexer_stopping"})  # fmt: skip
            await worker.shutdown()
        stopped.cancel()
        await running  # re-raises a worker failure
    finally:
        await db.close()
        await redis.aclose()
    log.info("indexer stopped", extra={"action": "indexer_stopped"})
    return 0


def arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shield_orchestrator.indexing.worker")
    # default: the Settings' (orchestrator_temporal_*, SHIELD_TEMPORAL_*)
    parser.add_argument("--temporal", default="", help="host:port of Temporal (overrides)")
    parser.add_argument("--namespace", default="", help="Temporal namespace (overrides)")
    parser.add_argument("--task-queue", default="", help="task queue (overrides)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--graceful-shutdown-s", type=float, default=GRACEFUL_SHUTDOWN_S)
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = arg_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        settings = load_settings()
        target = temporal_target(settings, args)
        target.tls()  # a missing or unreadable TLS file is a config error (exit 2)
    except (ConfigError, OSError) as exc:
        log.error("%s", exc, extra={"action": "config_error"})
        return 2
    try:
        return asyncio.run(serve(settings, args, target))
    except Exception:
        log.exception("indexer failed", extra={"action": "indexer_failed"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
