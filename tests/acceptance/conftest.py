"""Acceptance fixtures: the environment of the real processes, and the API as a process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import API_KEY
from tests.support.procs import worker_env
from tests.support.servers import LOOPBACK, PostgresServer, RedisServer, free_port, wait_for_port


@pytest.fixture
def env(
    rendered_root: Path, redis_srv: RedisServer, postgres_srv: PostgresServer, pg_database: str
) -> dict[str, str]:
    return worker_env(rendered_root, redis_srv, postgres_srv, pg_database) | {
        "SHIELD_API_KEYS": API_KEY
    }


@pytest.fixture
def api_proc(env: dict[str, str], tmp_path: Path, redis_client: Any) -> Iterator[tuple[Any, str]]:
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    # Its own process group: the API's uvicorn children (and multiprocessing's resource tracker)
    # are in it, so nothing outlives the fixture (a SIGKILL of the main process alone left them
    # running, adopted by init).
    proc = subprocess.Popen(
        [sys.executable, "-m", "shield_orchestrator.api", "--host", LOOPBACK, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 30, proc)  # type: ignore[arg-type]
        yield proc, f"http://{LOOPBACK}:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the main process stops its children
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        log.close()
