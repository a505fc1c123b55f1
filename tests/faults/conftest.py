"""Fixtures of the fault suite: a Redis under test (AOF everysec, restartable) per test, the
session Redis as the recorder of engine calls, a fresh PostgreSQL database, worker processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.support import redis_client, worker_env
from tests.support.procs import RECORDING_MODULE, Fleet, fleet
from tests.support.servers import PostgresServer, RedisServer, redis_server


@pytest.fixture
def sut_redis() -> Iterator[RedisServer]:
    """A redis-server of this test only, AOF on with fsync everysec (restartable)."""
    with redis_server(appendonly=True) as server:
        yield server


@pytest.fixture
async def sut(sut_redis: RedisServer) -> AsyncIterator[Any]:
    client = redis_client(sut_redis)
    yield client
    await client.aclose()


@pytest.fixture
async def recorder(redis_srv: RedisServer) -> AsyncIterator[Any]:
    """The recorder (tests/faults/recording_worker.py writes engine calls here): db 1 of the
    session Redis, emptied before the test."""
    client = redis_client(redis_srv, db=1)
    await client.flushdb()
    yield client
    await client.aclose()


FleetFactory = Callable[..., Any]


@pytest.fixture
def workers(
    rendered_root: Path,
    sut_redis: RedisServer,
    postgres_srv: PostgresServer,
    pg_database: str,
    redis_srv: RedisServer,
    tmp_path: Path,
) -> Iterator[Fleet]:
    """Worker processes against the Redis under test and this test's database."""
    env = worker_env(rendered_root, sut_redis, postgres_srv, pg_database, redis_srv)
    with fleet(env, tmp_path, RECORDING_MODULE) as f:
        yield f
        print(f.logs())  # shown by pytest only when the test failed
