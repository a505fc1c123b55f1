"""One owner process per LightRAG workspace: a Redis lease, renewed while the owner lives.

LightRAG keeps per-workspace pipeline state in process memory (``shared_storage``), so two
processes writing one workspace corrupt each other's pipeline bookkeeping. The engine takes
this lease at start and refuses to start when another process holds it.

Key (documented here, where it is built): ``{KEY_PREFIX}lightrag:workspace:{workspace}`` — a string
whose value is the owner's token (``host:pid:instance:random``). Written with ``SET NX PX``;
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

import redis.asyncio as aioredis

from shield_orchestrator import keys
from shield_orchestrator.errors import EngineError

log = logging.getLogger(__name__)

# KEYS[1] = lease key, ARGV[1] = token, ARGV[2] = ttl ms. 1 = renewed, 0 = not ours any more.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
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


def lease_key(prefix: str, workspace: str) -> str:
    return f"{prefix}lightrag:workspace:{workspace}"


class WorkspaceLock:
    """A renewed Redis lease on one workspace (use ``acquire`` / ``release``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        workspace: str,
        ttl_s: float,
        *,
        prefix: str = keys.KEY_PREFIX,
        owner: str = "",
    ) -> None:
        self.client = client
        self.workspace = workspace
        self.key = lease_key(prefix, workspace)
        self.ttl_ms = int(ttl_s * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{owner}:{secrets.token_hex(4)}"
        self.lost = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Take the lease or raise WorkspaceBusyError naming the current owner."""
        if await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            self.lost.clear()
            self._renewer = asyncio.create_task(self._renew_loop(), name="workspace-lease-renew")
            log.info(
                "workspace %r: lease taken",
                self.workspace,
                extra={"action": "engine.workspace_lock.acquired"},
            )
            return
        holder = await self.client.get(self.key)
        ttl = await self.client.pttl(self.key)
        holder_text = holder.decode() if isinstance(holder, bytes) else str(holder)
        raise WorkspaceBusyError(
            f"LightRAG workspace {self.workspace!r} is owned by another process ({holder_text}, "
            f"lease expires in {max(ttl, 0) / 1000:.1f}s unless renewed). LightRAG allows one "
            "owner process per workspace: run one worker process for this engine, or give this "
            "one another workspace."
        )

    async def renew(self) -> bool:
        ok = await self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        return bool(ok)

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
        with contextlib.suppress(Exception):
            await self.client.eval(_RELEASE, 1, self.key, self.token)
        log.info(
            "workspace %r: lease released",
            self.workspace,
            extra={"action": "engine.workspace_lock.released"},
        )
