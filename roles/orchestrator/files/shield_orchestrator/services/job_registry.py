"""Job creation for the API: all or nothing, idempotent, bounded.

Creating a job (:meth:`JobRegistry.create`)::

    XLEN workspace's stream >= max_queue_pending?         -> QueueFull (the API answers 429)
    Idempotency-Key known (Redis, then PostgreSQL)?        -> the same job, or IdempotencyConflict
    INSERT jobs row (PostgreSQL; idempotency_key UNIQUE)   -> a concurrent twin loses here
    ENQUEUE_LUA: HSET job hash, XADD every chunk, XADD ingestion.queued (global + job
                 stream), SET idempotency key
    Redis failed?                                          -> DELETE the row, re-raise

so a request that fails half-way leaves no job row, no job hash and no chunk on the stream.
One script call (atomic) instead of a MULTI of one XADD per chunk: redis-py packs one command
instead of N, which was most of the API's enqueue time; and the chunks travel as one argument
of it (see ENQUEUE_LUA). It is all or nothing even when Redis is out of memory: a script's
first write is refused (OOM, nothing written), and once it has written, Redis lets it finish
(it never aborts a script half-way on memory).

The idempotency key is stored namespaced (``client:<header>``, ``retry-failed:<job id>``) with
a SHA-256 digest of the canonical request (chunks, source type, workspace; computed only for a
request that has a key), in Redis for ``idempotency_ttl_s`` and in the job row's UNIQUE
``idempotency_key`` column for good.

Errors (all :class:`~shield_orchestrator.errors.ShieldError`)::

    ShieldError
    ├── JobNotFound            (errors.py) no such job
    └── RegistryError          this module
        ├── QueueFull          the workspace's stream holds max_queue_pending entries or more
        ├── IdempotencyConflict  same Idempotency-Key, different request
        └── NotRetryable       retry-failed on an active job, or nothing to retry
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import asyncpg
from redis.asyncio import Redis

from shield_orchestrator import keys
from shield_orchestrator.database.queries import query
from shield_orchestrator.errors import ShieldError
from shield_orchestrator.services import event_bus, messages
from shield_orchestrator.services.job_status import new_job_fields

JOB_KIND = "ingest"  # the jobs row's and the job hash's kind; its entries are ingest_chunk
# The jobs row's and the job hash's kind of a job whose entries are of each message kind.
JOB_KINDS = {messages.INGEST_CHUNK: JOB_KIND, messages.DELETE_DOCUMENT: "delete"}

# KEYS: 1 job hash, 2 the workspace's ingestion stream, 3 events stream, 4 idempotency key,
# 5 the job's event stream (the queued event goes to both streams with one id: event_bus.EVENT_LUA).
# ARGV: 1 events maxlen, 2 idempotency TTL (s), 3 idempotency value ('' = no key),
# 4 event JSON ([type, job_id, data]), 5 message version, 6 kind, 7 job id, 8 the chunks
# (:func:`chunks_blob`: "id\nbody\nid\nbody..."), then the job hash's field/value pairs.
# Each chunk's entry gets the fields of the message contract (services/messages.py), in the
# order of messages.FIELDS. Returns the ingestion.queued event's id. The chunks travel as ONE
# argument: redis-py packs each argument in Python (an isinstance ladder and a bytes join
# each), which for 2 arguments per chunk was the largest part of the API's CPU per request.
ENQUEUE_LUA = (
    event_bus.EVENT_LUA
    + """
redis.call('HSET', KEYS[1], unpack(ARGV, 9, #ARGV))
local blob = ARGV[8]
local pos, size = 1, #blob
while pos <= size do
  local id_end = string.find(blob, '\\n', pos, true)
  local body_end = string.find(blob, '\\n', id_end + 1, true) or (size + 1)
  redis.call('XADD', KEYS[2], '*', 'v', ARGV[5], 'kind', ARGV[6], 'job_id', ARGV[7],
    'chunk_id', string.sub(blob, pos, id_end - 1),
    'body', string.sub(blob, id_end + 1, body_end - 1))
  pos = body_end + 1
end
local ev = cjson.decode(ARGV[4])
local event_id = add_event(KEYS[3], ARGV[1], KEYS[5], ev[1], ev[2], ev[3])
if ARGV[3] ~= '' then redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[2]) end
return event_id
"""
)


class RegistryError(ShieldError):
    """Base of the job registry's refusals."""


class QueueFull(RegistryError):  # noqa: N818
    def __init__(self, workspace: str, depth: int, limit: int) -> None:
        super().__init__(
            f"the ingestion queue of workspace {workspace!r} holds {depth} chunks "
            f"(limit {limit}); retry later"
        )
        self.workspace = workspace
        self.depth = depth
        self.limit = limit


class IdempotencyConflict(RegistryError):  # noqa: N818 (named for what it is, like JobNotFound)
    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Idempotency-Key already used for job {job_id} with a different request body"
        )
        self.job_id = job_id


class NotRetryable(RegistryError):  # noqa: N818
    """retry-failed cannot run: the job is active, or has no failed chunk with a kept body."""


class NewChunk(NamedTuple):
    """One chunk to enqueue (a NamedTuple: built 100 times per request, cheaply)."""

    text: str
    source_uri: str
    metadata: Mapping[str, Any] | None = None
    chunk_id: str | None = None  # None: numbered c000001, c000002, ... in request order


class NewDeletion(NamedTuple):
    """One ``delete_document`` entry: documents to take out of the workspace's graph."""

    doc_ids: Sequence[str]
    source_uri: str  # what the documents were (a file), for logs and the dead letter
    chunk_id: str | None = None  # None: numbered c000001, c000002, ... in request order


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job of ``ingest_chunk`` entries (NewChunk), or of ``delete_document`` entries
    (NewDeletion, ``kind=messages.DELETE_DOCUMENT``); its entries are of one kind."""

    chunks: Sequence[NewChunk | NewDeletion]
    source_type: str
    workspace: str
    idempotency_key: str | None = None  # namespaced, e.g. "client:<header value>"
    retry_of: str | None = None
    kind: str = messages.INGEST_CHUNK  # the message kind of every entry

    def digest(self) -> str:
        """SHA-256 of the canonical request: equal requests, equal digests."""
        if self.kind != messages.INGEST_CHUNK:
            return _kind_digest(self)
        canonical = {
            "chunks": [
                {
                    "text": c.text,
                    "source_uri": c.source_uri,
                    "metadata": c.metadata,
                    "id": c.chunk_id,
                }
                for c in cast(Sequence[NewChunk], self.chunks)
            ],
            "source_type": self.source_type,
            "workspace": self.workspace,
            "retry_of": self.retry_of,
        }
        raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Created:
    job_id: str
    chunks_total: int
    replayed: bool = False  # True: an earlier request with this Idempotency-Key made the job


@dataclass(frozen=True, slots=True)
class Failure:
    chunk_id: str
    error: str
    attempts: int | None
    failed_at: dt.datetime | None
    source_uri: str | None = None
    body: Mapping[str, Any] | None = field(default=None, repr=False)  # kept by the DL stream


def _kind_digest(new: NewJob) -> str:
    """The digest of a job of another kind than ingest_chunk (the kind is part of it)."""
    entries = [list(c) for c in new.chunks]
    canonical = [new.kind, entries, new.source_type, new.workspace, new.retry_of]
    raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(raw.encode()).hexdigest()


def _body(new: NewJob, chunk: NewChunk | NewDeletion) -> bytes:
    """One entry's body, of the job's kind (ValueError for an entry of another kind)."""
    if new.kind == messages.INGEST_CHUNK and isinstance(chunk, NewChunk):
        return messages.chunk_body(
            chunk.text, chunk.source_uri, new.source_type, new.workspace, chunk.metadata
        )
    if new.kind == messages.DELETE_DOCUMENT and isinstance(chunk, NewDeletion):
        return messages.delete_body(new.workspace, chunk.doc_ids, chunk.source_uri)
    raise ValueError(f"a {type(chunk).__name__} in a job of kind {new.kind!r}")


def chunk_id(n: int) -> str:
    """The id of the n-th chunk of a job (1-based): c000001."""
    return f"c{n:06d}"


def chunks_blob(new: NewJob) -> bytes:
    """The chunks of a job as ENQUEUE_LUA reads them: ``id\\nbody`` per chunk, joined by a
    newline (neither an id nor a compact JSON body holds one)."""
    parts: list[bytes] = []
    for n, chunk in enumerate(new.chunks, 1):
        cid = chunk.chunk_id
        if cid is None:
            cid = chunk_id(n)
        elif "\n" in cid or not cid:
            raise ValueError(f"chunk id {cid!r}: empty or holds a newline")
        parts += (cid.encode(), _body(new, chunk))
    return b"\n".join(parts)


class JobRegistry:
    """Creates jobs (Redis + PostgreSQL) and reads their failures; one per API process."""

    def __init__(
        self, redis: Redis, db: Any, *, max_queue_pending: int, idempotency_ttl_s: int
    ) -> None:
        self.redis = redis
        self.db = db  # asyncpg pool
        self.max_queue_pending = max_queue_pending
        self.idempotency_ttl_s = idempotency_ttl_s
        self._script = redis.register_script(ENQUEUE_LUA)  # EVALSHA, loaded again on NOSCRIPT

    async def create(self, new: NewJob) -> Created:
        """Create the job, or return the earlier one of the same Idempotency-Key."""
        # Only an idempotent request needs the digest (SHA-256 over the whole body).
        digest = new.digest() if new.idempotency_key is not None else None
        stream = keys.ingestion_stream(new.workspace)
        depth, known = await self._depth_and_idempotency(stream, new.idempotency_key)
        if known is not None and digest is not None:
            return _replay_or_conflict(known, digest)
        if depth >= self.max_queue_pending:
            raise QueueFull(new.workspace, depth, self.max_queue_pending)
        job_id = str(uuid.uuid4())
        created_at = time.time()
        created = dt.datetime.fromtimestamp(created_at, dt.UTC)
        meta = {"source_type": new.source_type, "digest": digest, "retry_of": new.retry_of}
        try:
            await self.db.execute(
                query("insert_job"),
                job_id,
                JOB_KINDS[new.kind],
                new.workspace,
                len(new.chunks),
                new.idempotency_key,
                json.dumps(meta),
                created,
            )
        except asyncpg.UniqueViolationError:
            # A concurrent twin (or one whose Redis key expired) holds the key: answer with it.
            if digest is None:  # only the idempotency key is UNIQUE, and there is none
                raise
            return await self._replay_from_postgres(new.idempotency_key, digest)
        try:
            await self._enqueue(job_id, new, digest, created_at)
        except BaseException:
            await self.db.execute(query("delete_job"), job_id)
            raise
        return Created(job_id, len(new.chunks))

    async def lookup(self, idempotency_key: str) -> Created | None:
        """The job an idempotency key made (Redis while the key lives, then PostgreSQL)."""
        raw = await self.redis.get(keys.idempotency(idempotency_key))
        if raw:
            known = json.loads(raw)
            return Created(str(known["job_id"]), int(known["chunks_total"]), replayed=True)
        row = await self.db.fetchrow(query("select_job_by_idempotency_key"), idempotency_key)
        if row is None:
            return None
        return Created(str(row["job_id"]), int(row["chunks_total"]), replayed=True)

    async def _depth_and_idempotency(
        self, stream: str, idem: str | None
    ) -> tuple[int, dict[str, Any] | None]:
        if idem is None:  # one command, without a pipeline's bookkeeping
            return int(await self.redis.xlen(stream)), None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(stream)
            pipe.get(keys.idempotency(idem))
            replies = await pipe.execute()
        known = json.loads(replies[1]) if replies[1] else None
        return int(replies[0]), known

    async def _replay_from_postgres(self, idem: str | None, digest: str) -> Created:
        row = await self.db.fetchrow(query("select_job_by_idempotency_key"), idem)
        if row is None:  # deleted by its failed creator in the meantime
            raise RegistryError("a request with this Idempotency-Key failed just now; retry")
        meta = row["metadata"]
        meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
        known = {
            "job_id": str(row["job_id"]),
            "digest": meta.get("digest"),
            "chunks_total": row["chunks_total"],
        }
        return _replay_or_conflict(known, digest)

    async def _enqueue(
        self, job_id: str, new: NewJob, digest: str | None, created_at: float
    ) -> None:
        """The one script call that makes the job visible."""
        total = len(new.chunks)
        kind = JOB_KINDS[new.kind]
        job_fields = new_job_fields(job_id, total, new.workspace, created_at, kind)
        hash_args: list[str] = []
        for k, v in job_fields.items():
            hash_args += (k, v)
        data: dict[str, Any] = {
            "chunks_total": total,
            "workspace": new.workspace,
            "source_type": new.source_type,
        }
        if new.retry_of:
            data["retry_of"] = new.retry_of
        ev = event_bus.event_fields(event_bus.EventType.QUEUED, data, job_id=job_id)
        idem_key, idem_value = "", ""
        if new.idempotency_key is not None:
            idem_key = keys.idempotency(new.idempotency_key)
            idem_value = json.dumps({"job_id": job_id, "digest": digest, "chunks_total": total})
        await self._script(
            keys=[
                keys.job(job_id),
                keys.ingestion_stream(new.workspace),
                keys.EVENTS_STREAM,
                idem_key or keys.idempotency(""),
                keys.job_events(job_id),
            ],
            args=[
                keys.EVENTS_MAXLEN,
                self.idempotency_ttl_s,
                idem_value,
                json.dumps([ev["type"], ev["job_id"], ev["data"]]),
                messages.MESSAGE_VERSION,
                new.kind,
                job_id,
                chunks_blob(new),
                *hash_args,
            ],
        )


def _replay_or_conflict(known: Mapping[str, Any], digest: str) -> Created:
    if known.get("digest") != digest:
        raise IdempotencyConflict(str(known["job_id"]))
    return Created(str(known["job_id"]), int(known.get("chunks_total") or 0), replayed=True)
