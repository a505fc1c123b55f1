"""The worker side of the query protocol (services/queries.py): ``serve_queries`` answers one
workspace's questions with the engine of the process that serves it.

    XGROUP CREATE keys.query_stream(ws) keys.CONSUMER_GROUP 0 MKSTREAM   (once; BUSYGROUP ok)
    loop until stop:
      every SWEEP_PERIOD_S: sweep (XAUTOCLAIM idle > MAX_TIMEOUT_S + 5 s JUSTID; XACK + XDEL)
      XREADGROUP > COUNT free slots BLOCK block_ms
      per entry (a task, up to ``concurrency`` at once):
        malformed            -> XACK + XDEL, logged
        deadline passed      -> XACK + XDEL, no answer (nobody waits for it)
        answer(request) bounded by what is left of the deadline
                             -> MULTI {LPUSH + EXPIRE the reply, XACK, XDEL}
    stop: answers in progress get grace_s, the rest are cancelled and replied as failed

The worker wires it per workspace it serves (workers/workspaces.py), with ``engine.query`` as
the answer: engines/base.QueryInput is the shape of QueryRequest, QueryResult that of Answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shield_orchestrator import keys
from shield_orchestrator.errors import MalformedMessage, PermanentChunkError
from shield_orchestrator.services.queries import (
    MAX_TIMEOUT_S,
    REPLY_TTL_MARGIN_S,
    Answer,
    QueryError,
    QueryFailed,
    QueryRejected,
    QueryRequest,
    encode_reply,
    parse_request,
)

log = logging.getLogger(__name__)

SERVE_CONCURRENCY = 4  # queries one server answers at once per workspace
SWEEP_PERIOD_S = 60.0  # how often a server drops the pending requests of dead servers
_REDIS_ERRORS = (RedisError, OSError)

AnswerFunc = Callable[[QueryRequest], Awaitable[Answer]]
Running = dict[asyncio.Task[None], tuple[str, QueryRequest | None]]  # task -> entry, request


async def ensure_group(redis: Redis, workspace: str) -> None:
    """The workspace's request stream and its group (from the first entry: queued requests
    are read, and dropped when already expired)."""
    try:
        await redis.xgroup_create(
            keys.query_stream(workspace), keys.CONSUMER_GROUP, "0", mkstream=True
        )
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def serve_queries(
    redis: Redis,
    workspace: str,
    consumer: str,
    answer: AnswerFunc,
    stop: asyncio.Event,
    *,
    concurrency: int = SERVE_CONCURRENCY,
    block_ms: int = 1000,
    grace_s: float = 5.0,
) -> None:
    """Answer the workspace's queries with ``answer`` until ``stop`` is set.

    Up to ``concurrency`` answers at once. Redis errors are logged and retried; an answer that
    raises is replied as an error. At stop: reading stops, answers in progress get ``grace_s``,
    the rest are cancelled and replied as failed.
    """
    stream = keys.query_stream(workspace)
    running: Running = {}
    next_sweep = 0.0
    group_ready = False
    while not stop.is_set():
        try:
            if not group_ready:
                await ensure_group(redis, workspace)
                group_ready = True
            if time.monotonic() >= next_sweep:
                await sweep(redis, workspace, consumer)
                next_sweep = time.monotonic() + SWEEP_PERIOD_S
            if len(running) >= concurrency:
                await asyncio.wait(
                    list(running), return_when=asyncio.FIRST_COMPLETED, timeout=block_ms / 1000
                )
                continue
            read: Any = await redis.xreadgroup(
                keys.CONSUMER_GROUP,
                consumer,
                {stream: ">"},
                count=concurrency - len(running),
                block=block_ms,
            )
        except _REDIS_ERRORS as exc:
            group_ready = not (isinstance(exc, ResponseError) and "NOGROUP" in str(exc))
            log.warning(
                "queries of workspace %r: redis: %r; retrying",
                workspace,
                exc,
                extra={"action": "query_server_redis_error"},
            )
            await _sleep_or_stop(stop, 1.0)
            continue
        for _, entries in read or []:
            for entry_id, fields in entries:
                _start(redis, consumer, workspace, answer, entry_id, fields, running)
    await _stop_running(redis, consumer, workspace, running, grace_s)


def _start(
    redis: Redis,
    consumer: str,
    workspace: str,
    answer: AnswerFunc,
    entry_id: str,
    fields: Mapping[str, str],
    running: Running,
) -> None:
    stream = keys.query_stream(workspace)
    try:
        request = parse_request(fields)
    except MalformedMessage as exc:
        log.warning(
            "queries of workspace %r: dropped entry %s: %s",
            workspace,
            entry_id,
            exc,
            extra={"action": "query_malformed"},
        )
        task = asyncio.create_task(_ack(redis, stream, entry_id))
        running[task] = (entry_id, None)
        task.add_done_callback(lambda t: running.pop(t, None))
        return
    task = asyncio.create_task(
        _answer_one(redis, consumer, stream, entry_id, request, answer),
        name=f"query-{request.id}",
    )
    running[task] = (entry_id, request)
    task.add_done_callback(lambda t: running.pop(t, None))


async def _answer_one(
    redis: Redis,
    consumer: str,
    stream: str,
    entry_id: str,
    request: QueryRequest,
    answer: AnswerFunc,
) -> None:
    left = request.deadline - time.time()
    if left <= 0:  # its client stopped waiting: answering would only cost the engine
        log.info(
            "query %s: expired before it was read; dropped",
            request.id,
            extra={"action": "query_expired"},
        )
        await _ack(redis, stream, entry_id)
        return
    started = time.perf_counter()
    result: Answer | None = None
    error: QueryError | None = None
    try:
        result = await asyncio.wait_for(answer(request), left)
    except TimeoutError:
        error = QueryFailed(f"the engine took longer than the client's {left:.1f} s")
    except PermanentChunkError as exc:
        error = QueryRejected(str(exc))
    except Exception as exc:  # the loop never dies from an answer
        error = QueryFailed(f"{type(exc).__name__}: {exc}")
    ms = 1000 * (time.perf_counter() - started)
    log.info(
        "query %s on workspace %r (%s): %s in %.1f ms",
        request.id,
        request.workspace,
        request.mode,
        "answered" if error is None else f"failed: {error}",
        ms,
        extra={"action": "query_answered" if error is None else "query_failed"},
    )
    await _reply(
        redis, stream, entry_id, request, encode_reply(request.id, consumer, result, error, ms)
    )


async def _reply(
    redis: Redis, stream: str, entry_id: str, request: QueryRequest, reply: str
) -> None:
    """One MULTI: the reply (with a TTL past the client's deadline), XACK, XDEL."""
    ttl = max(int(request.deadline - time.time()), 0) + REPLY_TTL_MARGIN_S
    key = keys.query_reply(request.id)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, reply)
            pipe.expire(key, ttl)
            pipe.xack(stream, keys.CONSUMER_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
    except _REDIS_ERRORS as exc:  # the client times out; the sweep drops the entry
        log.warning(
            "query %s: reply not written: %r",
            request.id,
            exc,
            extra={"action": "query_reply_failed"},
        )


async def _ack(redis: Redis, stream: str, entry_id: str) -> None:
    with contextlib.suppress(*_REDIS_ERRORS):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, keys.CONSUMER_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()


async def sweep(
    redis: Redis, workspace: str, consumer: str, idle_s: float = MAX_TIMEOUT_S + 5, count: int = 100
) -> int:
    """XACK + XDEL requests pending longer than any client waits (their server died)."""
    stream = keys.query_stream(workspace)
    idle_ms = int(1000 * idle_s)
    reply = await redis.xautoclaim(
        stream, keys.CONSUMER_GROUP, consumer, idle_ms, "0-0", count=count, justid=True
    )
    stale = [str(i) for i in reply]  # redis-py keeps only the claimed ids with JUSTID
    if stale:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, keys.CONSUMER_GROUP, *stale)
            pipe.xdel(stream, *stale)
            await pipe.execute()
        log.info(
            "queries of workspace %r: dropped %d requests of dead servers",
            workspace,
            len(stale),
            extra={"action": "query_swept"},
        )
    return len(stale)


async def _stop_running(
    redis: Redis, consumer: str, workspace: str, running: Running, grace_s: float
) -> None:
    """Answers in progress get ``grace_s``; the rest are cancelled and replied as failed."""
    if not running:
        return
    tasks = dict(running)
    _, late = await asyncio.wait(list(tasks), timeout=grace_s)
    for task in late:
        task.cancel()
    for task in late:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        entry_id, request = tasks[task]
        if request is not None:
            error = QueryFailed(f"the worker serving workspace {workspace!r} stopped; retry")
            reply = encode_reply(request.id, consumer, None, error, 0.0)
            await _reply(redis, keys.query_stream(workspace), entry_id, request, reply)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
