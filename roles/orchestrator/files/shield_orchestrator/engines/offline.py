"""The ``offline`` engine: the real LightRAG pipeline and storages, with no LLM.

LightRAG's LLM hook is answered by engines/offline_extract.py (keyphrase entities and
co-occurrence relations, in LightRAG's own extraction format) and its embeddings by a hashed
bag of words, so every chunk really becomes entities, relations, graph edges and vectors in
LightRAG's storages and the graph can be queried afterwards. The tokenizer is local (UTF-8
bytes): nothing is downloaded. Results, logs and the README call this "offline extraction",
and so does a query's answer: the graph's context for the query under a line saying that no
LLM wrote it.
"""

from __future__ import annotations

from lightrag import LightRAG

from shield_orchestrator.engines import lightrag_setup
from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine

LABEL = "offline extraction (no LLM): keyphrase entities, co-occurrence relations"


class OfflineEngine(LightRAGEngine):
    name = "offline"
    label = LABEL
    has_llm = False  # a query's answer is the retrieved context, labelled (lightrag_query.py)

    def build_rag(self) -> LightRAG:
        c = self.config.with_changes(tokenizer="bytes")
        return lightrag_setup.build_rag(
            c,
            llm_func=lightrag_setup.offline_llm(c.offline_max_entities),
            llm_kwargs={},
            embedding=lightrag_setup.offline_embedding(c),
            llm_model_name="shield-offline-extraction",
        )
