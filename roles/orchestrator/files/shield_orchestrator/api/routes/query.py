"""POST /lightrag/query: a question about a workspace's graph, answered by its worker process.

The API holds no LightRAG instance: a second one on the workspace's storages would be a second
writer (LightRAG allows one per workspace). services/queries.submit_query forwards the question
over Redis to the process serving the workspace, which answers with its own engine:

    200  {workspace, mode, engine, answer | context, served_by}
    422  unknown workspace (naming the declared ones), bad mode, or the engine refused the text
    502  the engine failed answering
    504  no process serving the workspace answered within timeout_s (none owns it, or all busy)
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shield_orchestrator.api.deps import RedisDep
from shield_orchestrator.api.models import QueryIn, QueryOut, error_responses
from shield_orchestrator.services.queries import (
    QueryFailed,
    QueryRejected,
    QueryRequest,
    QueryTimeout,
    submit_query,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["query"])


@router.post(
    "/lightrag/query",
    response_model=QueryOut,
    responses=error_responses(400, 401, 413, 422, 502, 503, 504),
    summary="Ask a workspace's knowledge graph (answered by the process that serves it)",
)
async def query(body: QueryIn, redis: RedisDep) -> QueryOut | JSONResponse:
    request = QueryRequest(
        body.query, body.workspace, body.mode, body.only_need_context, body.top_k
    )
    try:
        reply = await submit_query(redis, request, body.timeout_s)
    except QueryRejected as exc:
        item = {"loc": ["body", "query"], "msg": str(exc), "type": "value_error"}
        return JSONResponse({"detail": [item]}, status_code=422)
    except QueryFailed as exc:
        log.warning("query on workspace %r failed: %s", body.workspace, exc,
                    extra={"action": "api_query_failed"})  # fmt: skip
        return JSONResponse({"detail": str(exc)}, status_code=502)
    except QueryTimeout as exc:
        log.warning("%s", exc, extra={"action": "api_query_timeout"})
        return JSONResponse({"detail": str(exc)}, status_code=504)
    return QueryOut(
        workspace=body.workspace,
        mode=body.mode,
        engine=reply.label,
        answer=None if reply.context_only else reply.text,
        context=reply.text if reply.context_only else None,
        served_by=reply.served_by,
    )
