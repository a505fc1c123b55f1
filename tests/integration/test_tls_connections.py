"""TLS between the app and its data services (issue 20), on a real redis-server and PostgreSQL.

The certificates come from the redis role's own issuing tasks (roles/redis/tasks/tls_issue.yml,
openssl on the controller): a CA made in a temp directory, one server certificate naming only
``IP:127.0.0.1``. Redis listens with TLS only (``port 0`` + ``tls-port``), PostgreSQL with
``ssl = on`` and ``hostssl`` lines, as the roles configure them. The app connects through its own
``create_redis`` / ``create_pool`` (and the engines' Redis URL, PostgreSQL environment and the
storage check's connection) with Settings loaded from the environment the way a unit gets them.

What is proved: a verified connection works; a certificate from another CA, or a host name the
certificate does not carry (``localhost``), is refused; a plaintext client is refused by both
servers; TLS is never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from shield_orchestrator.database.pool import create_pool, dsn_kwargs
from shield_orchestrator.engines import lightrag_setup
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.settings import Settings, load_settings

from tests.support.servers import (
    LOOPBACK,
    PostgresServer,
    RedisServer,
    TlsFiles,
    issue_certificate,
    postgres_server,
    redis_server,
)

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.shield.orchestrator.plugins.modules import (  # noqa: E402
    redis_stream_group,
)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The deployment CA and a server certificate for 127.0.0.1 only (not for localhost)."""
    return issue_certificate(tmp_path_factory.mktemp("tls") / "ca", "server", ["IP:127.0.0.1"])


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The certificate of another CA (a server certificate issued by it, for the same name)."""
    return issue_certificate(tmp_path_factory.mktemp("tls") / "ca", "x", ["IP:127.0.0.1"]).ca


@pytest.fixture(scope="module")
def tls_redis(tls_files: TlsFiles) -> Iterator[RedisServer]:
    with redis_server(tls=tls_files) as server:
        yield server


@pytest.fixture(scope="module")
def tls_postgres(tls_files: TlsFiles) -> Iterator[PostgresServer]:
    with postgres_server(tls=tls_files) as server:
        yield server


def settings_for(
    redis: RedisServer, pg: PostgresServer, ca: Path, host: str = LOOPBACK, tls: str = "1"
) -> Settings:
    """Settings as a unit's EnvironmentFile would give them (settings.load_settings)."""
    return load_settings({
        "SHIELD_REDIS_HOST": host, "SHIELD_REDIS_PORT": str(redis.port),
        "SHIELD_REDIS_PASSWORD": redis.password, "SHIELD_REDIS_TLS": tls,
        "SHIELD_POSTGRES_HOST": host, "SHIELD_POSTGRES_PORT": str(pg.port),
        "SHIELD_POSTGRES_DB": "postgres", "SHIELD_POSTGRES_USER": pg.user,
        "SHIELD_POSTGRES_PASSWORD": pg.password, "SHIELD_POSTGRES_TLS": tls,
        "SHIELD_TLS_CA_FILE": str(ca),
    })  # fmt: skip


async def redis_ping(settings: Settings) -> Any:
    client = create_redis(settings)
    try:
        return await client.ping()
    finally:
        await client.aclose()


async def pg_ssl_in_use(settings: Settings) -> Any:
    pool = await create_pool(settings, min_size=1, max_size=1, timeout_s=10)
    try:
        return await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await pool.close()


# --- Redis ------------------------------------------------------------------------------------


async def test_redis_verified_tls_connection(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    settings = settings_for(tls_redis, tls_postgres, tls_files.ca)
    assert settings.redis_tls
    assert settings.tls_ca_file == str(tls_files.ca)
    assert await redis_ping(settings) is True


async def test_redis_refuses_a_certificate_of_another_ca(
    tls_redis: RedisServer, tls_postgres: PostgresServer, other_ca: Path
) -> None:
    with pytest.raises(RedisConnectionError, match="certificate verify failed"):
        await redis_ping(settings_for(tls_redis, tls_postgres, other_ca))


async def test_redis_refuses_a_host_name_the_certificate_does_not_carry(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    """The certificate names 127.0.0.1; dialled as localhost, the name check fails."""
    settings = settings_for(tls_redis, tls_postgres, tls_files.ca, host="localhost")
    with pytest.raises(RedisConnectionError, match=r"certificate verify failed|match"):
        await redis_ping(settings)


async def test_redis_refuses_plaintext(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    """port 0: a client without TLS gets no answer (and its password never crosses in clear)."""
    plain = settings_for(tls_redis, tls_postgres, tls_files.ca, tls="0")
    with pytest.raises(RedisConnectionError):
        await redis_ping(plain)
    reply = b""
    with socket.create_connection((LOOPBACK, tls_redis.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        with contextlib.suppress(ConnectionResetError):  # the server drops the connection
            reply = s.recv(64)  # an empty read or a TLS alert, never +PONG
    assert b"PONG" not in reply
    assert b"NOAUTH" not in reply


async def test_engine_redis_url_verifies_the_server(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles, other_ca: Path
) -> None:
    """The engines' workspace lease connects by URL (rediss://, same checks as create_redis)."""
    good = EngineConfig.from_settings(settings_for(tls_redis, tls_postgres, tls_files.ca))
    assert good.redis_url is not None
    assert good.redis_url.startswith("rediss://")
    client = Redis.from_url(good.redis_url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()
    bad = EngineConfig.from_settings(settings_for(tls_redis, tls_postgres, other_ca))
    assert bad.redis_url is not None
    client = Redis.from_url(bad.redis_url)
    try:
        with pytest.raises(RedisConnectionError, match="certificate verify failed"):
            await client.ping()
    finally:
        await client.aclose()


def test_redis_stream_group_module_verifies_the_server(
    tls_redis: RedisServer, tls_files: TlsFiles, other_ca: Path
) -> None:
    """The deployment's own probe (workers validate, rolling restart) speaks TLS and verifies."""
    params = {
        "host": LOOPBACK, "port": tls_redis.port, "db": 0, "username": "",
        "password": tls_redis.password, "stream": "shield:tls-probe", "group": "g",
        "state": "present", "start_id": "0", "timeout": 5.0, "tls": True,
    }  # fmt: skip
    result = redis_stream_group.run({**params, "ca_file": str(tls_files.ca)}, check_mode=True)
    assert result["exists"] is False
    with pytest.raises(ssl.SSLCertVerificationError):
        redis_stream_group.run({**params, "ca_file": str(other_ca)}, check_mode=True)
    with pytest.raises(ConnectionError):  # plaintext to the TLS-only port: reset or closed
        redis_stream_group.run({**params, "tls": False}, check_mode=True)


# --- PostgreSQL -------------------------------------------------------------------------------


async def test_postgres_verified_tls_connection(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    settings = settings_for(tls_redis, tls_postgres, tls_files.ca)
    assert settings.postgres_tls
    assert await pg_ssl_in_use(settings) is True


async def test_postgres_refuses_a_certificate_of_another_ca(
    tls_redis: RedisServer, tls_postgres: PostgresServer, other_ca: Path
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await pg_ssl_in_use(settings_for(tls_redis, tls_postgres, other_ca))


async def test_postgres_refuses_a_host_name_the_certificate_does_not_carry(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    settings = settings_for(tls_redis, tls_postgres, tls_files.ca, host="localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        await pg_ssl_in_use(settings)


async def test_postgres_refuses_plaintext_logins_over_tcp(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    """hostssl only: a plaintext login is refused before any password is asked for."""
    plain = {**dsn_kwargs(settings_for(tls_redis, tls_postgres, tls_files.ca)), "ssl": "disable"}
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncio.wait_for(asyncpg.connect(**plain), 10)


def test_lightrag_gets_verify_full(
    tls_redis: RedisServer, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    """LightRAG's PostgreSQL storages read POSTGRES_SSL_*: verify-full against the same CA."""
    config = EngineConfig.from_settings(settings_for(tls_redis, tls_postgres, tls_files.ca))
    env = lightrag_setup.postgres_environment(config)
    assert env["POSTGRES_SSL_MODE"] == "verify-full"
    assert env["POSTGRES_SSL_ROOT_CERT"] == str(tls_files.ca)
    plain = EngineConfig.from_settings(settings_for(tls_redis, tls_postgres, tls_files.ca, tls="0"))
    assert lightrag_setup.postgres_environment(plain)["POSTGRES_SSL_MODE"] == ""
