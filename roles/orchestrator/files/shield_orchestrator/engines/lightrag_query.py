"""A question about the graph, asked of the engine's own LightRAG instance (engines offline and
lightrag; services/queries.py forwards it to the process that owns the workspace).

LightRAG 1.5.7's query entry: ``aquery_llm(query, QueryParam(mode, only_need_context, top_k,
...))``, the call its own Server's ``POST /query`` makes (``aquery`` wraps it but answers
``None`` for a failed query, dropping the message). What comes back:

    {"status": "success", "llm_response": {"content": answer or context, ...}, "data": ...}
    {"status": "failure", "metadata": {"failure_reason": "no_results"}, "llm_response":
        {"content": PROMPTS["fail_response"]}}   nothing in the graph matched: an answer
    {"status": "failure", "message": "Query failed: ..."}   it raised inside: QueryFailed
    raises QueryValidationError before that       empty or too short (RAG modes: 3 English
                                                  characters, a CJK one counts 2): rejected

The offline engine has no LLM to write an answer: it always asks for the context (LightRAG
still runs its keyword step, which offline_extract answers with the query's keyphrases), and
for an answer returns that context under a line saying no LLM wrote it (OFFLINE_ANSWER).
"""

from __future__ import annotations

from typing import Any

from lightrag import LightRAG, QueryParam
from lightrag.query_validation import QueryValidationError

from shield_orchestrator.engines.base import (
    ChunkError,
    PermanentChunkError,
    QueryInput,
    QueryResult,
)

OFFLINE_ANSWER = (
    "[offline extraction (no LLM): no generated answer; what the graph holds for the query]\n"
)


async def ask(rag: LightRAG, q: QueryInput, label: str, *, offline: bool = False) -> QueryResult:
    """``q`` answered from ``rag`` (see the module docstring)."""
    param = QueryParam(
        mode=q.mode,  # checked by the API and services/queries: one of LightRAG's modes
        only_need_context=q.only_need_context or offline,
        stream=False,
        enable_rerank=False,  # no rerank model is configured: LightRAG would warn per query
    )
    if q.top_k is not None:
        param.top_k = q.top_k
    try:
        result: dict[str, Any] = await rag.aquery_llm(q.query, param=param)
    except QueryValidationError as exc:
        raise PermanentChunkError(f"LightRAG refuses the query: {exc}") from exc
    message = str(result.get("message") or "")
    if result.get("status") == "failure" and message.startswith("Query failed"):
        raise ChunkError(f"LightRAG: {message}")
    content = str((result.get("llm_response") or {}).get("content") or "")
    if offline and not q.only_need_context:
        content = OFFLINE_ANSWER + content
    return QueryResult(content, q.only_need_context, label)
