"""Questions about a workspace's graph, answered by the process that serves the workspace.

LightRAG allows one writer per workspace, and with the in-process engines the graph lives
behind that writer (workers/workspaces.py: the owner holds the workspace's lease). A query is
therefore not answered by the API: it is forwarded over Redis to the process serving the
workspace, whose engine answers it with the same LightRAG instance that ingests (LightRAG
Server does the same: queries and its pipeline share one process). No second LightRAG instance
ever opens the storages, so no second writer can appear (LightRAG writes on the query path
too: ``aquery`` flushes its LLM cache).

Request/reply::

    API (submit_query, here)                 worker (query_server.serve_queries, per workspace)
      XADD keys.query_stream(ws) MAXLEN ~ {v, id, body}  ->  XREADGROUP BLOCK (group
      BLPOP keys.query_reply(id) timeout                     keys.CONSUMER_GROUP): answer(request)
        <- one JSON reply                                <-  MULTI: LPUSH + EXPIRE reply,
      nothing in time: XDEL the request, QueryTimeout          XACK + XDEL the request

- The body carries the client's deadline: a server drops (XACK + XDEL, no answer) a request
  whose deadline passed, and bounds the answer by what is left of it.
- A failing answer (the engine raised) is replied as an error, never kills the loop:
  PermanentChunkError (e.g. LightRAG refused the text) -> QueryRejected (422), anything else
  -> QueryFailed (502).
- A server that dies while answering leaves its request pending: nobody answers, the client
  times out (QueryTimeout, 504 naming the workspace), and any server of the workspace XACKs and
  XDELs that entry once it is older than MAX_TIMEOUT_S (sweep): queries are not redelivered.
- No process serving the workspace (no owner yet, all down): the request waits on the stream
  until the client's timeout, which then deletes it; MAXLEN ~ bounds what is left behind.

This module is the contract (request and reply encoding, errors) and the API's side;
services/query_server.py is the worker's. Costs (measured, ARCHITECTURE.md "Queries"): the
API spends two round trips (XADD, BLPOP), the server two (XREADGROUP, one MULTI): a forwarded
query takes ~0.6 ms on the loopback plus what the engine spends answering.

Errors (their tree; the API maps them, api/routes/query.py)::

    ShieldError
    └── QueryError          services/queries.py
        ├── QueryTimeout    no process serving the workspace answered in time (504)
        ├── QueryRejected   the engine refused the query text (422): it raised
        │                   PermanentChunkError
        └── QueryFailed     the engine failed answering it (502)
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shield_orchestrator import keys
from shield_orchestrator.errors import MalformedMessage, ShieldError

log = logging.getLogger(__name__)

QUERY_VERSION = "1"  # the "v" field this code writes and reads
MODES: tuple[str, ...] = ("mix", "local", "global", "hybrid", "naive")  # LightRAG's graph modes
DEFAULT_TIMEOUT_S = 60.0  # how long the API waits for an answer unless the request says
MAX_TIMEOUT_S = 600.0  # the longest a client may wait; older pending requests are swept
STREAM_MAXLEN = 1000  # approximate cap of a workspace's request stream (XADD MAXLEN ~)
REPLY_TTL_MARGIN_S = 5  # a reply outlives the client's deadline by this much, then expires
_REDIS_ERRORS = (RedisError, OSError)


class QueryError(ShieldError):
    """Base of the errors a query raises (see the module docstring)."""


class QueryTimeout(QueryError):  # noqa: N818 (the name is the contract)
    """No process serving the workspace answered within the timeout."""


class QueryRejected(QueryError):  # noqa: N818 (the name is the contract)
    """The engine refused the query (bad input: retrying the same text cannot help)."""


class QueryFailed(QueryError):  # noqa: N818 (the name is the contract)
    """The engine failed while answering."""


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """One question about a workspace's graph (engines/base.QueryInput is its shape)."""

    query: str
    workspace: str
    mode: str = "mix"
    only_need_context: bool = False
    top_k: int | None = None
    deadline: float = 0.0  # epoch seconds; after it nobody waits for the answer
    id: str = ""  # made by submit_query


class Answer(Protocol):
    """What an engine's answer is to the server (engines/base.QueryResult is one)."""

    @property
    def text(self) -> str: ...

    @property
    def context_only(self) -> bool: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True, slots=True)
class QueryReply:
    """The answer to a request, as the server put it on the reply list."""

    id: str
    text: str
    context_only: bool  # text is the retrieved context, not a generated answer
    label: str  # the engine's label (offline: "offline extraction (no LLM) ...")
    served_by: str  # the consumer (host:instance) that answered
    elapsed_ms: float  # the engine's time


# --- the wire format -------------------------------------------------------------------------


def encode_request(request: QueryRequest) -> dict[str, str]:
    body = {
        "query": request.query,
        "workspace": request.workspace,
        "mode": request.mode,
        "only_need_context": request.only_need_context,
        "top_k": request.top_k,
        "deadline": request.deadline,
    }
    return {"v": QUERY_VERSION, "id": request.id, "body": json.dumps(body)}


def parse_request(fields: Mapping[str, str]) -> QueryRequest:
    """A request entry's fields -> QueryRequest; MalformedMessage naming what is wrong."""
    if fields.get("v") != QUERY_VERSION:
        raise MalformedMessage(
            f"query version {fields.get('v')!r}; this reader has {QUERY_VERSION}"
        )
    query_id = fields.get("id") or ""
    try:
        body = json.loads(fields.get("body") or "")
    except ValueError as exc:
        raise MalformedMessage(f"query {query_id}: body is not JSON") from exc
    if not query_id or not isinstance(body, dict):
        raise MalformedMessage(f"query {query_id!r}: no id, or body not an object")
    top_k = body.get("top_k")
    checks = {
        "query": isinstance(body.get("query"), str) and body["query"].strip() != "",
        "workspace": isinstance(body.get("workspace"), str),
        "mode": body.get("mode") in MODES,
        "only_need_context": isinstance(body.get("only_need_context"), bool),
        "top_k": top_k is None or (type(top_k) is int and top_k >= 1),
        "deadline": isinstance(body.get("deadline"), int | float),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise MalformedMessage(f"query {query_id}: invalid body.{', body.'.join(bad)}")
    return QueryRequest(
        body["query"],
        body["workspace"],
        body["mode"],
        body["only_need_context"],
        top_k,
        float(body["deadline"]),
        query_id,
    )


def encode_reply(
    query_id: str, consumer: str, answer: Answer | None, error: QueryError | None, ms: float
) -> str:
    if answer is not None:
        out: dict[str, Any] = {
            "ok": True,
            "text": answer.text,
            "context_only": answer.context_only,
            "label": answer.label,
        }
    else:
        kind = "rejected" if isinstance(error, QueryRejected) else "failed"
        out = {"ok": False, "error": str(error), "kind": kind}
    return json.dumps({"id": query_id, "served_by": consumer, "elapsed_ms": round(ms, 3), **out})


def parse_reply(raw: str) -> QueryReply:
    """A reply -> QueryReply, or the QueryRejected / QueryFailed it carries."""
    try:
        reply = json.loads(raw)
        if not reply["ok"]:
            cls = QueryRejected if reply.get("kind") == "rejected" else QueryFailed
            raise cls(f"{reply['error']} (answered by {reply.get('served_by', '?')})")
        return QueryReply(
            str(reply["id"]),
            str(reply["text"]),
            bool(reply["context_only"]),
            str(reply["label"]),
            str(reply["served_by"]),
            float(reply["elapsed_ms"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryFailed(f"unreadable reply from the worker: {raw[:200]!r}") from exc


# --- the API side ------------------------------------------------------------------------------


async def submit_query(
    redis: Redis, request: QueryRequest, timeout_s: float = DEFAULT_TIMEOUT_S
) -> QueryReply:
    """Forward ``request`` to the process serving its workspace and wait for the answer.

    QueryTimeout when none answers within ``timeout_s`` (the request is deleted then, so a
    server that appears later does not answer it); QueryRejected / QueryFailed from the engine.
    """
    timeout_s = min(max(timeout_s, 0.1), MAX_TIMEOUT_S)
    query_id = uuid.uuid4().hex
    request = QueryRequest(
        request.query,
        request.workspace,
        request.mode,
        request.only_need_context,
        request.top_k,
        time.time() + timeout_s,
        query_id,
    )
    stream = keys.query_stream(request.workspace)
    fields: dict[Any, Any] = encode_request(request)
    entry_id = await redis.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
    popped = await redis.blpop([keys.query_reply(query_id)], timeout=timeout_s)
    if popped is None:
        await redis.xdel(stream, entry_id)
        raise QueryTimeout(
            f"no worker process serving workspace {request.workspace!r} answered within "
            f"{timeout_s:g} s (is one running and does it own the workspace? "
            "shieldctl workspaces)"
        )
    return parse_reply(str(popped[1]))
