"""The API as the service runs it: ``python -m shield_orchestrator.api --processes N``, one
port, N uvicorn processes accepting on one listening socket (api/processes.py).

Real processes, real HTTP on the loopback, real Redis and PostgreSQL behind them:
- /metrics, whichever process answers, sums the counters of every process: the 200s of
  /health it reports equal the requests sent, and more than one process served them;
- SIGHUP (``systemctl reload``) replaces every process while a bounded client loop sends
  requests: 0 requests fail, every old process is gone, and the counters carry on. On new
  connections nothing is retried. On keep-alive connections the client retries a GET once
  when the server closed the connection without answering, as HTTP/1.1 clients do for an
  idempotent request on a reused connection (RFC 9112, 9.3.1): an idle keep-alive connection
  is closed by its keep-alive timeout, with or without a restart, and that close can meet the
  client's next request (api/protocol.py);
- a reload applies a redeployed configuration: the processes it starts read the rendered
  modules afresh (a smaller body limit: 413; fewer header fields: 431), not the values the
  main process read at its start;
- SIGTERM to one process (what the rolling restart does to each old one): 0 requests fail,
  and the main process starts a replacement;
- SIGTERM to the main process (``systemctl stop``) stops every process, and the main process
  exits by SIGTERM as a single uvicorn process does;
- the protections of a single process hold in each of them: too many header fields -> 431
  (api/protocol.py, whose class crosses to the children as its bounds), no key -> 401.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import HEADERS
from tests.support.servers import LOOPBACK, free_port, wait_for_port

PROCESSES = 3
REQUESTS = "shield_api_requests_total"
HEALTH = {"route": "/health", "method": "GET", "status": "200"}
NO_KEY = {"route": "<unmatched>", "method": "GET", "status": "401"}  # refused before routing
RATE = 100  # requests/s of the client loop
MAX_REQUESTS = 6000  # the loop's bound, whatever happens (60 s at RATE)
NEW_MAX_HEADERS = 10  # a redeployed bound: httpx's own 5 fields and the key pass, fillers not


@dataclass
class ApiService:
    proc: subprocess.Popen[bytes]
    base: str
    metrics_dir: Path
    log_path: Path

    def children(self) -> set[int]:
        """The pids of the serving processes (not multiprocessing's resource tracker)."""
        pid = self.proc.pid
        found = set()
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
            except OSError:
                continue  # gone meanwhile
        return found

    async def started(self, apps: int, timeout_s: float = 60) -> set[int]:
        """The serving processes, once ``apps`` of them (in all) have logged their start."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log().count("action=api_start") >= apps and len(self.children()) == PROCESSES:
                return self.children()
            await asyncio.sleep(0.2)
        raise AssertionError(f"{apps} app starts not seen:\n{self.log()}")

    async def gone(self, pids: set[int], timeout_s: float = 30) -> None:
        """Return once none of ``pids`` runs any more (AssertionError after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while any(Path(f"/proc/{pid}").exists() for pid in pids):  # noqa: ASYNC240
            assert time.monotonic() < deadline, f"still running: {pids}"
            await asyncio.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[ApiService]:
    with running_service(env, tmp_path) as started:
        yield started


@contextmanager
def running_service(env: dict[str, str], tmp_path: Path) -> Iterator[ApiService]:
    """``python -m shield_orchestrator.api`` with PROCESSES processes, stopped by SIGTERM."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"")  # a previous run's file: removed at start
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shield_orchestrator.api", "--host", LOOPBACK,
             "--port", str(port), "--processes", str(PROCESSES)],
            env=env | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, 30, proc)  # type: ignore[arg-type]
        yield ApiService(proc, f"http://{LOOPBACK}:{port}", metrics_dir, log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@dataclass
class Load:
    sent: int = 0
    ok: int = 0
    retried: int = 0  # keep-alive only: GETs sent again after a close without an answer
    failures: list[str] = field(default_factory=list)


async def client_loop(base: str, stop: asyncio.Event, *, keep_alive: bool) -> Load:
    """GET /health at RATE per second (open loop) until ``stop`` or MAX_REQUESTS; each on a
    new connection, or on a pool of keep-alive connections."""
    result = Load()
    limits = httpx.Limits(max_keepalive_connections=20 if keep_alive else 0)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def one() -> None:
            try:
                try:
                    response = await client.get("/health")
                except httpx.RemoteProtocolError:
                    if not keep_alive:
                        raise
                    result.retried += 1
                    response = await client.get("/health")
            except httpx.HTTPError as exc:
                result.failures.append(repr(exc))
                return
            if response.status_code == 200:
                result.ok += 1
            else:
                result.failures.append(f"HTTP {response.status_code}")

        loop = asyncio.get_running_loop()
        start, tasks = loop.time(), []
        while not stop.is_set() and result.sent < MAX_REQUESTS:
            tasks.append(asyncio.create_task(one()))
            result.sent += 1
            await asyncio.sleep(max(0.0, start + result.sent / RATE - loop.time()))
        await asyncio.gather(*tasks)
    return result


async def scraped_health_200s(base: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        text = (await client.get("/metrics", headers=HEADERS)).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS and sample.labels == HEALTH:
                return sample.value
    return 0.0


def per_process(metrics_dir: Path, tmp: Path, labels: dict[str, str]) -> dict[int, float]:
    """Each process's own count of REQUESTS{labels}, read from its own counter file alone."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = tmp / f"{path.stem}-{len(list(tmp.iterdir()))}"
        alone.mkdir()
        shutil.copy(path, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[int(path.stem.split("_")[1])] = registry.get_sample_value(REQUESTS, labels) or 0.0
    return counts


async def test_metrics_sum_the_requests_of_every_process(
    service: ApiService, tmp_path: Path
) -> None:
    await service.started(PROCESSES)
    assert not (service.metrics_dir / "counter_1.db").exists()
    sent = 0
    async with httpx.AsyncClient(
        base_url=service.base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        for _ in range(10):  # bursts of concurrent connections: a busy process leaves some
            replies = await asyncio.gather(*(client.get("/health") for _ in range(30)))
            assert {r.status_code for r in replies} == {200}
            sent += len(replies)
    assert await scraped_health_200s(service.base) == sent
    assert await scraped_health_200s(service.base) == sent  # any process answers the same
    split = per_process(service.metrics_dir, tmp_path, HEALTH)
    assert sum(split.values()) == sent
    assert len([n for n in split.values() if n > 0]) >= 2, split


async def test_header_bounds_and_the_key_gate_hold_in_every_process(
    service: ApiService, tmp_path: Path
) -> None:
    await service.started(PROCESSES)
    too_many = {f"x-filler-{i}": "1" for i in range(150)}  # the rendered bound is 100
    async with httpx.AsyncClient(
        base_url=service.base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        for _ in range(5):
            bursts = [client.get("/jobs", headers=too_many) for _ in range(10)]
            bursts += [client.get("/jobs") for _ in range(20)]
            replies = await asyncio.gather(*bursts)
            assert [r.status_code for r in replies[:10]] == [431] * 10
            assert [r.status_code for r in replies[10:]] == [401] * 20
    refused = per_process(service.metrics_dir, tmp_path, NO_KEY)
    assert sum(refused.values()) == 100
    assert len([n for n in refused.values() if n > 0]) >= 2, refused


@pytest.mark.parametrize("keep_alive", [False, True], ids=["new-connections", "keep-alive"])
async def test_sighup_replaces_every_process_and_no_request_fails(
    service: ApiService, keep_alive: bool
) -> None:
    old = await service.started(PROCESSES)
    stop = asyncio.Event()
    loop = asyncio.create_task(client_loop(service.base, stop, keep_alive=keep_alive))
    await asyncio.sleep(1)
    service.proc.send_signal(signal.SIGHUP)
    new = await service.started(2 * PROCESSES)  # each replacement has started its app
    await service.gone(old)  # the last old one may still be stopping
    await asyncio.sleep(1)
    stop.set()
    result = await loop
    assert result.failures == [], result.failures[:5]
    assert result.ok == result.sent > 2 * RATE
    assert result.retried <= result.sent // 100, result.retried  # rare, not the rule
    assert not new & old
    assert service.log().count("action=api_stop") == PROCESSES  # the old ones, gracefully
    assert await scraped_health_200s(service.base) == result.sent  # the old ones' counts kept


async def test_sigterm_of_one_process_fails_no_request(service: ApiService) -> None:
    old = await service.started(PROCESSES)
    stop = asyncio.Event()
    loop = asyncio.create_task(client_loop(service.base, stop, keep_alive=False))
    await asyncio.sleep(1)
    victim = min(old)
    os.kill(victim, signal.SIGTERM)
    replaced = await service.started(PROCESSES + 1)
    await asyncio.sleep(1)
    stop.set()
    result = await loop
    assert result.failures == [], result.failures[:5]
    assert result.ok == result.sent
    assert victim not in replaced
    assert len(replaced - old) == 1


async def test_sigterm_of_the_main_process_stops_them_all(service: ApiService) -> None:
    children = await service.started(PROCESSES)
    service.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(service.proc.wait, 30) == -signal.SIGTERM
    assert service.log().count("action=api_stop") == PROCESSES
    await service.gone(children)


async def test_sighup_applies_the_redeployed_rendered_configuration(
    env: dict[str, str], rendered_root: Path, tmp_path: Path
) -> None:
    """What ``site.yml`` does on a code or configuration change: new files, then a reload."""
    tree = tmp_path / "rendered"
    shutil.copytree(rendered_root / "shield_orchestrator", tree / "shield_orchestrator",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    python_path = os.pathsep.join([str(tree), *env["PYTHONPATH"].split(os.pathsep)[1:]])
    config = tree / "shield_orchestrator" / "api" / "config.py"
    text = config.read_text()
    rendered = {name: int(re.findall(rf"^{name} = (\d+)", text, flags=re.M)[0])
                for name in ("MAX_BODY_BYTES", "MAX_HEADERS")}  # fmt: skip
    assert rendered["MAX_BODY_BYTES"] > 2048
    assert rendered["MAX_HEADERS"] > NEW_MAX_HEADERS + 2
    body = b"x" * 2048  # not JSON: 422 under the rendered limit, 413 above the new one
    # with httpx's 5 own fields, the key and Content-Length: 3 under the rendered bound
    fillers = {f"x-filler-{i}": "1" for i in range(rendered["MAX_HEADERS"] - 10)}
    headers = {**HEADERS, **fillers}
    with running_service(env | {"PYTHONPATH": python_path}, tmp_path) as service:
        old = await service.started(PROCESSES)
        async with httpx.AsyncClient(base_url=service.base, timeout=10) as client:
            assert (await client.post("/lightrag/ingest-async", content=body, headers=headers)
                    ).status_code == 422  # fmt: skip
            for name, value in (("MAX_BODY_BYTES", 1024), ("MAX_HEADERS", NEW_MAX_HEADERS)):
                text, n = re.subn(rf"^{name} = \d+", f"{name} = {value}", text, flags=re.M)
                assert n == 1, name
            config.write_text(text)
            service.proc.send_signal(signal.SIGHUP)
            await service.started(2 * PROCESSES)
            await service.gone(old)
            for _ in range(2 * PROCESSES):  # whichever process answers
                answer = await client.post("/lightrag/ingest-async", content=body, headers=HEADERS)
                assert answer.status_code == 413, answer.text
                assert "1024" in answer.text
                refused = await client.get("/jobs", headers=headers)
                assert refused.status_code == 431
                assert (await client.get("/jobs", headers=HEADERS)).status_code == 200
        assert service.proc.poll() is None  # the main process stayed
