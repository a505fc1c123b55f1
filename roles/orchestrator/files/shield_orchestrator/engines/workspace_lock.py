"""One owner process per LightRAG workspace: a Redis lease, renewed while the owner lives.

LightRAG keeps per-workspace pipeline state in process memory (``shared_storage``), so two
processes writing one workspace's storage corrupt each other's pipeline bookkeeping. The
engine takes this lease at start; when another process holds it, the engine waits up to one
TTL (a crashed owner's lease expires meanwhile) and then refuses to start.

Scope: the lease guards one *storage*. File storages live on one host's disk, so two hosts
with the same workspace name hold two storages: the lease is per host
(``keys.lightrag_workspace(ws, host)`` = ``{KEY_PREFIX}lightrag:workspace:{ws}@{host}``).
PostgreSQL storages are one storage for the whole fleet: the lease is global
(``{KEY_PREFIX}lightrag:workspace:{ws}``). :func:`lease_host` picks the scope.

The key is a string whose value is the owner's token (``host:instance:pid:random``). Written
with ``SET NX PX``;
renewed and released only by the holder (compare-and-renew / compare-and-delete Lua), so a
process that lost its lease (paused longer than the TTL) can never extend or free someone
else's. The renew loop runs every TTL/3; if a renewal finds the lease gone, ``lost`` is set
and the engine refuses further chunks (they are retried by a process that holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

import redis.asyncio as aioredis

from shield_orchestrator import keys
from shield_orchestrator.errors import EngineError

log = logging.getLogger(__name__)

# KEYS[1] = lease key, ARGV[1] = token, ARGV[2] = ttl ms. 1 = renewed, 0 = not ours any more.
# 2 = it had expired and nobody took it: ours again. A library call that blocks the event loop
# past the TTL (Milvus Lite replaying its log at start took 86 s under load, the lease TTL is
# 30 s) lets the lease expire while no other process holds it; taking it back is safe because
# an absent key means no other owner exists now, while a key holding another token means one
# does (lost).
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
# KEYS[1] = lease key, ARGV[1] = token. 1 = released, 0 = not ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class WorkspaceBusyError(EngineError):
    """Another process owns the workspace; this one must not start its engine."""


def lease_host(shared_storage: bool, host: str) -> str:
    """The lease scope: "" (fleet-wide) for a storage every host shares, else this host."""
    if shared_storage:
        return ""
    return host or socket.gethostname()


class WorkspaceLock:
    """A renewed Redis lease on one workspace (use ``acquire`` / ``release``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        workspace: str,
        ttl_s: float,
        *,
        host: str = "",
        owner: str = "",
    ) -> None:
        """``host`` = the lease scope from :func:`lease_host` ("" = fleet-wide); ``owner`` =
        who we are (``host:instance``, default this hostname), shown to a process refused."""
        self.client = client
        self.workspace = workspace
        self.key = keys.lightrag_workspace(workspace, host)
        self.ttl_ms = int(ttl_s * 1000)
        me = owner or socket.gethostname()
        self.token = f"{me}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lost = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lease, waiting up to ``wait_s`` for it to fall free; else raise
        WorkspaceBusyError naming the current owner.

        Waiting one TTL lets a process restarted after a crash (SIGKILL, OOM: its lease was
        not released) start once the dead owner's lease expires, instead of failing until
        systemd's start limit gives up on the unit; a live owner renews, so it still wins.
        """
        deadline = time.monotonic() + wait_s
        while not await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            if time.monotonic() >= deadline:
                raise await self._busy()
            await asyncio.sleep(min(self.ttl_ms / 6000, max(deadline - time.monotonic(), 0.01)))
        self.lost.clear()
        self._renewer = asyncio.create_task(self._renew_loop(), name="workspace-lease-renew")
        log.info(
            "workspace %r: lease %s taken",
            self.workspace,
            self.key,
            extra={"action": "engine.workspace_lock.acquired"},
        )

    async def _busy(self) -> WorkspaceBusyError:
        holder = await self.client.get(self.key)
        ttl = await self.client.pttl(self.key)
        holder_text = holder.decode() if isinstance(holder, bytes) else str(holder)
        return WorkspaceBusyError(
            f"LightRAG workspace {self.workspace!r} is owned by another process ({holder_text}, "
            f"lease {self.key} expires in {max(ttl, 0) / 1000:.1f}s unless renewed). LightRAG "
            "allows one owner process per workspace storage: run one worker process for this "
            "engine per host (file storages) or per fleet (PostgreSQL storages), or give this "
            "one another workspace."
        )

    async def renew(self) -> bool:
        """Extend the lease; False when another process holds it now."""
        answer = await self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        if answer == 2:
            log.warning(
                "workspace %r: lease %s had expired (this process was blocked past the TTL) "
                "and no other process took it: taken again",
                self.workspace,
                self.key,
                extra={"action": "engine.workspace_lock.retaken"},
            )
        return bool(answer)

    async def _renew_loop(self) -> None:
        interval = self.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                ok = await self.renew()
            except Exception:  # a Redis blip: try again; the lease outlives two misses
                log.warning(
                    "workspace %r: lease renewal failed",
                    self.workspace,
                    exc_info=True,
                    extra={"action": "engine.workspace_lock.renew_failed"},
                )
                continue
            if not ok:
                log.error(
                    "workspace %r: lease lost to another owner",
                    self.workspace,
                    extra={"action": "engine.workspace_lock.lost"},
                )
                self.lost.set()
                return

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        released = 0
        with contextlib.suppress(Exception):  # Redis down: the lease expires by itself
            released = await self.client.eval(_RELEASE, 1, self.key, self.token)
        if released:
            log.info(
                "workspace %r: lease %s released",
                self.workspace,
                self.key,
                extra={"action": "engine.workspace_lock.released"},
            )
