"""The app's own Redis ACL user (roles/redis: redis_app_*), on a real redis-server.

What is proved: with exactly the rules the role renders (read from the role's defaults), the
API (ingest, health, metrics) and a worker pool run a job to completion as that user; the same
user is refused FLUSHALL, CONFIG SET, ACL SETUSER, KEYS, SHUTDOWN, CLIENT KILL, SAVE and any
key outside the app's prefix; the redis role's fallback prefix is the orchestrator role's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from secrets import token_hex
from typing import Any

import pytest
import yaml
from redis.exceptions import NoPermissionError
from shield_orchestrator import keys
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.workers.worker_pool import WorkerPool

from tests.support.api import HEADERS, api_settings, asgi_client
from tests.support.pools import pool_config, wait_for

pytestmark = pytest.mark.integration

ROLES = Path(__file__).resolve().parents[2] / "roles"
USER = "shield-acl-test"


def role_defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text(encoding="utf-8"))


def acl_rules(prefix: str) -> list[str]:
    """The rules of the role's `user` line (roles/redis/templates/shield.conf.j2), as words."""
    redis = role_defaults("redis")
    patterns = [
        p.replace("{{ orchestrator_key_prefix | default('shield:') }}", prefix)
        for p in redis["redis_app_key_patterns"]
    ]
    return ["resetkeys", *(f"~{p}" for p in patterns), *redis["redis_app_acl_rules"].split()]


def test_the_redis_role_falls_back_to_the_orchestrator_key_prefix() -> None:
    [pattern] = role_defaults("redis")["redis_app_key_patterns"]
    fallback = re.search(r"default\('([^']*)'\)", pattern)
    assert fallback, pattern
    assert fallback.group(1) == role_defaults("orchestrator")["orchestrator_key_prefix"]


def test_every_stream_name_is_under_the_key_prefix() -> None:
    """The ACL grants the prefix only: a stream outside it would be refused (NOPERM)."""
    for name in (
        keys.ingestion_stream(keys.WORKSPACES[0]),
        keys.DEAD_LETTER_STREAM,
        keys.EVENTS_STREAM,
    ):
        assert name.startswith(keys.KEY_PREFIX), name


@pytest.fixture
async def acl_settings(worker_settings: Any, redis_client: Any) -> AsyncIterator[Any]:
    """Settings that log in as a fresh ACL user with the role's rules (deleted afterwards)."""
    password = token_hex(20)
    await redis_client.acl_setuser(USER, reset=True)  # a clean slate, then the role's rules
    await redis_client.execute_command(
        "ACL", "SETUSER", USER, "on", f">{password}", *acl_rules(keys.KEY_PREFIX)
    )
    try:
        yield dataclasses.replace(worker_settings, redis_username=USER, redis_password=password)
    finally:
        await redis_client.acl_deluser(USER)


async def test_the_api_and_a_pool_run_a_job_as_the_app_user(
    acl_settings: Any, pg_pool: Any
) -> None:
    app_redis = create_redis(acl_settings)
    assert await app_redis.acl_whoami() == USER

    async def db_factory() -> Any:
        return pg_pool

    pool = WorkerPool(app_redis, NoopEngine(), pool_config(), "acl:1", db_factory, close_db=False)
    task = asyncio.create_task(pool.run(), name="pool-acl")
    try:
        async with asgi_client(api_settings(acl_settings)) as api:
            chunks = [{"text": f"acl chunk {i}", "source_uri": f"test://acl/{i}"} for i in range(6)]
            r = await api.post(
                "/lightrag/ingest-async",
                json={"chunks": chunks, "source_type": "acl"},
                headers=HEADERS,
            )
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]

            async def completed() -> bool:
                r = await api.get(f"/jobs/{job_id}", headers=HEADERS)
                return bool(r.status_code == 200 and r.json()["status"] == "completed")

            await wait_for(completed, what="the job completed as the ACL user")
            health = await api.get("/health/detailed", headers=HEADERS)
            assert health.status_code == 200, health.text
            assert health.json()["redis"]["ok"] is True
            metrics = await api.get("/metrics", headers=HEADERS)
            assert metrics.status_code == 200
            assert "shield_workers_live 1.0" in metrics.text
    finally:
        pool.request_stop("test")
        await asyncio.wait_for(task, 30)
        await app_redis.aclose()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
        ("ACL", "SETUSER", USER, "+@all"),
        ("KEYS", "*"),
        ("SHUTDOWN", "NOSAVE"),
        ("CLIENT", "KILL", "ID", "999999"),
        ("SAVE",),
        ("SET", "not-the-app:key", "x"),
        ("GET", "not-the-app:key"),
    ],
)
async def test_the_app_user_is_refused_what_the_app_never_needs(
    acl_settings: Any, command: tuple[str, ...]
) -> None:
    app_redis = create_redis(acl_settings)
    try:
        with pytest.raises(NoPermissionError):
            await app_redis.execute_command(*command)
        assert await app_redis.set(keys.KEY_PREFIX + "probe", "1")  # its own keys: allowed
    finally:
        await app_redis.aclose()
