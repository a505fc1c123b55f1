"""The API as a real process (``python -m shield_orchestrator.api``) with the real worker
process (``python -m shield_orchestrator.workers``), spoken to over real HTTP.

What is proved: submit -> the 202's events_url, followed as returned, from ingestion.queued
to ingestion.completed, then the server ends the stream -> GET /jobs/{id} at 100 %;
the API refuses to start without SHIELD_API_KEYS (naming it); on SIGTERM an open SSE stream
is closed cleanly (last chunk sent) and the lifespan shuts down; a port already taken is a
failed start (exit 3), not a clean exit.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import API_KEY, HEADERS
from tests.support.procs import worker_processes
from tests.support.servers import LOOPBACK

pytestmark = pytest.mark.acceptance


async def test_submit_follow_events_to_completion_then_status_is_100_percent(
    api_proc: tuple[Any, str], env: dict[str, str], tmp_path: Path
) -> None:
    _, base = api_proc
    chunks = [{"text": f"acceptance chunk {i}", "source_uri": f"test://e2e/{i}"} for i in range(12)]
    with worker_processes(env, tmp_path) as spawn:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            r = await client.post(
                "/lightrag/ingest-async",
                json={"chunks": chunks, "source_type": "acceptance"},
                headers=HEADERS,
            )
            assert r.status_code == 202, r.text
            job = r.json()
            seen: list[dict[str, Any]] = []

            async def follow() -> None:
                """events_url exactly as returned; returns when the server ends the stream."""
                async with client.stream("GET", job["events_url"], headers=HEADERS) as s:
                    event = ""
                    async for line in s.aiter_lines():
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                        elif line.startswith("data:"):
                            seen.append({"event": event, **json.loads(line[5:])})

            worker = spawn("1")
            await asyncio.wait_for(follow(), 60)  # the stream ends after the terminal event
            status = (await client.get(job["status_url"], headers=HEADERS)).json()
        worker.signal(signal.SIGTERM)
        assert await worker.exited() == 0

    types = [e["event"] for e in seen]
    assert types[0] == "ingestion.queued"
    assert "ingestion.started" in types
    assert "ingestion.progress" in types
    assert types[-1] == "ingestion.completed"
    assert {e["job_id"] for e in seen} == {job["job_id"]}
    assert status["status"] == "completed"
    assert status["percent_complete"] == 100.0
    assert (status["chunks_processed"], status["chunks_failed"]) == (12, 0)


async def test_sigterm_closes_open_streams_and_stops_gracefully(
    api_proc: tuple[Any, str], tmp_path: Path
) -> None:
    """uvicorn re-raises the SIGTERM it handled once shut down (systemd counts that exit as
    clean); the lifespan's shutdown (clients closed) is logged before."""
    proc, base = api_proc
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("GET", "/events/stream", headers=HEADERS) as s,
    ):
        assert s.status_code == 200
        proc.send_signal(signal.SIGTERM)
        ended = asyncio.create_task(s.aread())
        await asyncio.wait_for(ended, 20)  # the server ends the response; no hang
    assert await asyncio.to_thread(proc.wait, 20) == -signal.SIGTERM
    log = (tmp_path / "api.log").read_text()
    assert "action=api_start" in log
    assert "action=api_stop" in log
    assert API_KEY not in log


def test_refuses_to_start_without_api_keys(env: dict[str, str]) -> None:
    for value in ("", "changeme", "short"):
        done = subprocess.run(
            [sys.executable, "-m", "shield_orchestrator.api"],
            env=env | {"SHIELD_API_KEYS": value}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "SHIELD_API_KEYS" in done.stderr
        assert "short" not in done.stderr  # a real (if bad) key is never printed


def test_a_port_already_taken_is_a_failed_start(env: dict[str, str]) -> None:
    """serve() exits 3 (uvicorn's startup failure) when it cannot listen: systemd's
    Restart=on-failure then retries, where an exit 0 would leave the service down."""
    import socket

    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "shield_orchestrator.api", "--host", LOOPBACK,
             "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
