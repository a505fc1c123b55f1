"""The workspace lease (engines/workspace_lock.py) on a real Redis, through real engine starts.

The lease guards one LightRAG *storage*: file storages live on one host's disk (lease per
host, so the cluster scenario's two worker hosts can both run a workspace of the same name);
PostgreSQL storages are shared by the fleet (lease global: one owner process fleet-wide).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from shield_orchestrator import keys
from shield_orchestrator.engines.base import ChunkInput
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.offline import OfflineEngine
from shield_orchestrator.engines.workspace_lock import WorkspaceBusyError, WorkspaceLock

from tests.support.pools import wait_for
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def redis(redis_srv: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_srv.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def engines() -> AsyncIterator[AsyncExitStack]:
    """Engines started through ``start(stack, config)`` are closed at the end (LIFO)."""
    async with AsyncExitStack() as stack:
        yield stack


async def start(stack: AsyncExitStack, config: EngineConfig) -> OfflineEngine:
    engine = OfflineEngine(config)
    await engine.start()
    stack.push_async_callback(engine.close)
    return engine


def file_config(redis_srv: RedisServer, workdir: Path, host: str) -> EngineConfig:
    return EngineConfig(
        workspace="shared",
        working_dir=str(workdir),
        storage="file",
        vector_storage="file",
        redis_url=redis_srv.url,
        workspace_lock_ttl_s=3,
        status_poll_s=0.02,
        host=host,
        lock_owner="1",
        workspace_lock_wait_s=0,  # refuse at once (the waiting start has its own tests)
    )


async def test_two_owners_cannot_hold_one_workspace_on_one_host(
    redis_srv: RedisServer, redis: aioredis.Redis, engines: AsyncExitStack, tmp_path: Path
) -> None:
    config = file_config(redis_srv, tmp_path, host="worker-a")
    first = await start(engines, config)
    key = keys.lightrag_workspace("shared", "worker-a")
    assert (await redis.get(key) or b"").startswith(b"worker-a:1:")
    # waiting past the 3 s lease does not help: a live owner renews it (every TTL/3)
    waiting = dataclasses.replace(config, workspace_lock_wait_s=3.5)
    with pytest.raises(WorkspaceBusyError, match="one owner process per workspace") as info:
        await start(engines, waiting)
    assert key in str(info.value)  # the operator sees which lease is in the way
    await first.close()
    assert await redis.exists(key) == 0  # released on close
    fourth = WorkspaceLock(redis, "shared", 3, host="worker-a")
    await fourth.acquire()
    await fourth.release()


async def test_a_crashed_owners_lease_is_taken_once_it_expires(
    redis_srv: RedisServer, redis: aioredis.Redis, engines: AsyncExitStack, tmp_path: Path
) -> None:
    """A worker killed with SIGKILL never released its lease; its restart waits it out
    (one TTL) instead of failing until systemd's start limit gives up on the unit."""
    key = keys.lightrag_workspace("shared", "worker-a")
    await redis.set(key, "worker-a:1:4242:dead", px=1000)  # the dead process's lease
    config = dataclasses.replace(
        file_config(redis_srv, tmp_path, host="worker-a"), workspace_lock_wait_s=None
    )
    assert config.lock_wait_s() == config.workspace_lock_ttl_s + 1
    await start(engines, config)
    holder = await redis.get(key) or b""
    assert holder.startswith(b"worker-a:1:")
    assert holder != b"worker-a:1:4242:dead"


async def test_file_storages_are_leased_per_host(
    redis_srv: RedisServer, redis: aioredis.Redis, engines: AsyncExitStack, tmp_path: Path
) -> None:
    """Two hosts, same workspace name, file storages: two storages, two owners (cluster)."""
    await start(engines, file_config(redis_srv, tmp_path / "a", host="worker-a"))
    await start(engines, file_config(redis_srv, tmp_path / "b", host="worker-b"))
    held = sorted(k.decode() for k in await redis.keys(keys.lightrag_workspace("shared") + "*"))
    assert held == sorted(
        [
            keys.lightrag_workspace("shared", "worker-a"),
            keys.lightrag_workspace("shared", "worker-b"),
        ]
    )


async def test_postgres_storages_are_leased_fleet_wide(
    redis_srv: RedisServer,
    redis: aioredis.Redis,
    postgres_srv: PostgresServer,
    pg_database: str,
    engines: AsyncExitStack,
    tmp_path: Path,
) -> None:
    """Two hosts, same workspace, PostgreSQL storages: one storage, so only one owner."""
    pg = dataclasses.replace(
        file_config(redis_srv, tmp_path / "a", host="worker-a"),
        storage="postgres",
        postgres_host="127.0.0.1",
        postgres_port=postgres_srv.port,
        postgres_user=postgres_srv.user,
        postgres_password=postgres_srv.password,
        postgres_db=pg_database,
    )
    await start(engines, pg)
    assert await redis.exists(keys.lightrag_workspace("shared")) == 1
    other_host = dataclasses.replace(pg, host="worker-b", working_dir=str(tmp_path / "b"))
    with pytest.raises(WorkspaceBusyError, match="worker-a:1:"):
        await start(engines, other_host)


async def test_a_sigkilled_owner_process_is_replaced_after_its_lease_expires(
    rendered_root: Path,
    redis_srv: RedisServer,
    redis: aioredis.Redis,
    engines: AsyncExitStack,
    tmp_path: Path,
) -> None:
    """A real worker-like process owns the lease and is killed with SIGKILL (no release):
    its lease stays until the TTL runs out, then a second owner takes it over."""
    key = keys.lightrag_workspace("shared", "worker-a")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(rendered_root), str(REPO)])}
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.lease_owner", redis_srv.url, str(tmp_path / "a"),
        "worker-a", env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert owner.stdout is not None
        output = await asyncio.wait_for(_until_started(owner.stdout), 120)
        assert output.endswith(b"started\n"), output.decode(errors="replace")
        token = (await redis.get(key) or b"").decode()
        assert token.startswith(f"worker-a:1:{owner.pid}:")
    finally:
        owner.send_signal(signal.SIGKILL)
        await asyncio.wait_for(owner.wait(), 10)
    assert owner.returncode == -signal.SIGKILL
    assert (await redis.get(key) or b"").decode() == token  # nobody released it
    config = dataclasses.replace(
        file_config(redis_srv, tmp_path / "a", host="worker-a"), workspace_lock_wait_s=None
    )
    await start(engines, config)  # waits up to one TTL for the dead owner's lease
    holder = (await redis.get(key) or b"").decode()
    assert holder.startswith(f"worker-a:1:{os.getpid()}:")


async def _until_started(out: asyncio.StreamReader) -> bytes:
    """The owner's output up to its ``started`` line (or to its end, if it died first)."""
    seen = b""
    while not seen.endswith(b"started\n"):
        line = await out.readline()
        if not line:
            break
        seen += line
    return seen


async def test_an_owner_that_lost_its_lease_refuses_chunks(
    redis_srv: RedisServer,
    redis: aioredis.Redis,
    engines: AsyncExitStack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An owner paused past its TTL finds another process's token at its next renewal: it
    logs the loss and refuses chunks (EngineOverloaded: they are retried elsewhere)."""
    from shield_orchestrator.engines.base import EngineOverloaded

    caplog.set_level(logging.ERROR)
    engine = await start(engines, file_config(redis_srv, tmp_path, host="worker-a"))
    key = keys.lightrag_workspace("shared", "worker-a")
    await redis.set(key, "worker-b:2:4242:newer", px=60_000)  # another owner took it over

    def lost() -> bool:
        actions = [getattr(r, "action", "") for r in caplog.records]
        return "engine.workspace_lock.lost" in actions

    await wait_for(lost, 10, "the lease loss noticed")  # renewed every TTL/3 (1 s)
    chunk = _chunk()
    with pytest.raises(EngineOverloaded, match="lease lost"):
        await engine.process(chunk)
    assert await redis.get(key) == b"worker-b:2:4242:newer"  # never renewed or freed by it
    await engine.close()
    assert await redis.get(key) == b"worker-b:2:4242:newer"


async def test_an_owner_blocked_past_its_ttl_takes_the_free_lease_back(
    redis_srv: RedisServer,
    redis: aioredis.Redis,
    engines: AsyncExitStack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library call that blocks the event loop past the TTL (Milvus Lite replaying its log at
    start) lets the lease expire with no other owner: the next renewal takes it back instead
    of declaring it lost, and the engine keeps processing."""
    import time

    caplog.set_level(logging.WARNING)
    engine = await start(engines, file_config(redis_srv, tmp_path, host="worker-a"))
    key = keys.lightrag_workspace("shared", "worker-a")
    token = await redis.get(key)
    time.sleep(3.5)  # noqa: ASYNC251  # the loop blocked past the 3 s TTL, as a sync library call does
    assert await redis.get(key) is None  # expired while blocked

    def retaken() -> bool:
        actions = [getattr(r, "action", "") for r in caplog.records]
        return "engine.workspace_lock.retaken" in actions

    await wait_for(retaken, 10, "the free lease taken back")
    assert await redis.get(key) == token
    actions = [getattr(r, "action", "") for r in caplog.records]
    assert "engine.workspace_lock.lost" not in actions
    chunk = _chunk()
    result = await engine.process(chunk)
    assert result.entities > 0


def _chunk() -> ChunkInput:
    return ChunkInput(
        job_id="j",
        chunk_id="c000001",
        text="Ada meets Bob.",
        source_uri="file:///a.txt",
        workspace="shared",
    )
