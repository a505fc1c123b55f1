"""Consumer-group helpers on a workspace's ingestion stream (keys.ingestion_stream(ws) /
keys.CONSUMER_GROUP).

Portable to Redis 7.0 (XAUTOCLAIM with the deleted-ids reply, XPENDING IDLE). Every helper
takes the client and the stream, so a pool, a test or the API's health check use the same calls.

Leases: an entry in a consumer's PEL is "leased" to it while its idle time stays below the
reclaim timeout. A live worker renews what it processes with :func:`renew_leases` (XCLAIM
min-idle 0 JUSTID: resets the idle time, does not count a delivery) but only for the ids it
still owns (checked in the same Lua call), so it never steals an entry back from a consumer
that reclaimed it. :func:`reclaim` takes entries whose owner stopped renewing (XAUTOCLAIM);
:func:`take_over` takes every pending entry of the stream at once, for a process that has just
become the workspace's owner (the previous owner is gone: its lease expired or it released it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shield_orchestrator import keys

Entry = tuple[str, dict[str, str]]  # (stream id, fields); fields empty when XDELed meanwhile

# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids.
# Renews (XCLAIM ... 0 JUSTID) the ids still pending for this consumer; returns them.
_RENEW_LUA = """
local owned = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then owned[#owned + 1] = ARGV[i] end
end
if #owned > 0 then
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(owned) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return owned
"""


# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] start, ARGV[4] page size.
# One page of XAUTOCLAIM min-idle 0 JUSTID; returns {next start, ids claimed}. (redis-py's
# xautoclaim(justid=True) drops the cursor, which paging needs.)
_TAKE_OVER_LUA = """
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'COUNT', ARGV[4],
                     'JUSTID')
return {r[1], #r[2]}
"""


# KEYS[1] the single ingestion stream of releases before workspaces had their own streams.
# ARGV[1] the stream name prefix (keys.INGESTION_STREAM), ARGV[2] page size, ARGV[3] the default
# workspace. Moves up to a page of entries, fields unchanged, to the stream of the workspace
# their body names; deletes the old stream (and its group) once empty. Returns {moved, left}.
_ADOPT_LUA = """
local moved = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])) do
  local fields, ws = e[2], ARGV[3]
  for i = 1, #fields, 2 do
    if fields[i] == 'body' then
      local ok, body = pcall(cjson.decode, fields[i + 1])
      if ok and type(body) == 'table' and type(body.workspace) == 'string' then
        ws = body.workspace
      end
    end
  end
  redis.call('XADD', ARGV[1] .. ':' .. ws, '*', unpack(fields))
  redis.call('XDEL', KEYS[1], e[1])
  moved = moved + 1
end
local left = redis.call('XLEN', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1]) end
return {moved, left}
"""


@dataclass(frozen=True, slots=True)
class GroupState:
    """The consumer group as XINFO GROUPS reports it (lag is None when Redis cannot tell)."""

    pending: int
    lag: int | None
    consumers: int
    length: int


def _entries(raw: Any) -> list[Entry]:
    return [(entry_id, dict(fields or {})) for entry_id, fields in raw or []]


async def ensure_group(redis: Redis, stream: str) -> bool:
    """Create the consumer group (and the stream) if missing; True when it was created.

    The group starts at id 0, so chunks queued before any worker started are consumed.
    """
    try:
        await redis.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


async def read_group(
    redis: Redis, stream: str, consumer: str, count: int, block_ms: int | None, start: str = ">"
) -> list[Entry]:
    """XREADGROUP: new entries (``start=">"``, may BLOCK), or this consumer's own pending
    entries after ``start`` (``"0"``: from the oldest; page with the last id returned).

    Reading pending entries again counts a delivery (XPENDING's times_delivered grows).
    """
    reply: Any = await redis.xreadgroup(
        keys.CONSUMER_GROUP,
        consumer,
        {stream: start},
        count=count,
        block=block_ms if start == ">" else None,
    )
    out: list[Entry] = []
    for _stream, entries in reply or []:
        out.extend(_entries(entries))
    return out


async def renew_leases(redis: Redis, stream: str, consumer: str, ids: Sequence[str]) -> list[str]:
    """Reset the idle time of the ids this consumer still owns; returns those ids."""
    if not ids:
        return []
    owned: Any = await redis.eval(_RENEW_LUA, 1, stream, keys.CONSUMER_GROUP, consumer, *ids)
    return [str(i) for i in owned]


async def reclaim(
    redis: Redis, stream: str, consumer: str, min_idle_ms: int, count: int, start: str = "0-0"
) -> tuple[str, list[Entry], list[str]]:
    """XAUTOCLAIM: take up to ``count`` entries idle for ``min_idle_ms`` or more.

    Returns ``(next_start, entries, deleted_ids)``; ``deleted_ids`` were pending but are no
    longer in the stream (Redis 7 already removed them from the PEL).
    """
    reply: Any = await redis.xautoclaim(
        stream, keys.CONSUMER_GROUP, consumer, min_idle_ms, start, count=count
    )
    next_start = reply[0]
    entries = _entries(reply[1])
    deleted = [str(i) for i in reply[2]] if len(reply) > 2 else []
    return next_start, entries, deleted


async def take_over(redis: Redis, stream: str, consumer: str, page: int = 1000) -> int:
    """Make every pending entry of ``stream`` this consumer's (XAUTOCLAIM min-idle 0 JUSTID,
    paged); returns how many. The new owner of a workspace calls it before reading: its fetcher
    then rereads its own pending entries from 0 (counting a delivery each, so poison is still
    caught), and the seen set keeps an entry the old owner already counted from counting twice.
    """
    start, taken = "0-0", 0
    while True:
        reply: Any = await redis.eval(
            _TAKE_OVER_LUA, 1, stream, keys.CONSUMER_GROUP, consumer, start, page
        )
        start, taken = str(reply[0]), taken + int(reply[1])
        if start in ("0-0", "0"):
            return taken


async def adopt_legacy_stream(
    redis: Redis, default_workspace: str, page: int = 500, max_pages: int = 1000
) -> int:
    """Move the entries of the one ingestion stream older releases used (``INGESTION_STREAM``
    itself) to their workspaces' streams, a page per call; returns how many moved.

    An upgrade loses nothing queued: each entry keeps its fields (the message contract did not
    change) and goes to the stream of the workspace its body names (``default_workspace`` for a
    body without one). An entry that was pending there is delivered again from its new stream;
    the seen set keeps one already counted from counting twice.
    """
    moved = 0
    for _ in range(max_pages):  # an old API still writing there is drained at the next start
        if not await redis.exists(keys.INGESTION_STREAM):
            break
        reply: Any = await redis.eval(
            _ADOPT_LUA, 1, keys.INGESTION_STREAM, keys.INGESTION_STREAM, page, default_workspace
        )
        moved += int(reply[0])
        if int(reply[1]) == 0:
            break
    return moved


async def delivery_counts(redis: Redis, stream: str, ids: Sequence[str]) -> dict[str, int]:
    """Times each pending id was delivered (XPENDING per id, one pipeline); absent: not pending."""
    if not ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xpending_range(stream, keys.CONSUMER_GROUP, min=entry_id, max=entry_id, count=1)
        replies: list[Any] = await pipe.execute()
    counts: dict[str, int] = {}
    for entry_id, rows in zip(ids, replies, strict=True):
        if rows:
            counts[entry_id] = int(rows[0]["times_delivered"])
    return counts


async def group_state(redis: Redis, stream: str) -> GroupState | None:
    """Pending count, lag and consumers of the group; None when the group does not exist."""
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError:
        return None
    for g in groups:
        if g.get("name") == keys.CONSUMER_GROUP:
            lag = g.get("lag")
            length: Any = await redis.xlen(stream)
            return GroupState(
                pending=int(g.get("pending") or 0),
                lag=None if lag is None else int(lag),
                consumers=int(g.get("consumers") or 0),
                length=int(length),
            )
    return None
