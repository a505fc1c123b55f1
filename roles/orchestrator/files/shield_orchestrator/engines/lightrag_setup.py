"""Build one LightRAG instance from an EngineConfig (storages, tokenizer, LLM and embeddings).

LightRAG facts this module encodes (lightrag-hku 1.5.7):

- Storage classes by name: postgres = PGKVStorage, PGDocStatusStorage, PGTableGraphStorage
  (plain tables, no Apache AGE); file = JsonKVStorage, JsonDocStatusStorage, NetworkXStorage.
  Vectors: postgres = PGVectorStorage (needs pgvector), milvus = MilvusVectorDBStorage on an
  embedded Milvus Lite data directory (MILVUS_URI = a path; WAL + segments, one process holds
  it), file = NanoVectorDBStorage. The file storages rewrite each whole file after every
  document (cost per chunk grows with the graph: bench/REPORT.md, Growth); the others write
  what changed.
- Everything LightRAG takes as an argument is handed to it in :func:`build_rag`. The PG
  storages share one process-wide pool (``ClientManager``) configured ONLY from environment
  variables POSTGRES_* (or a ``config.ini`` in the working directory), and
  ``LightRAG.__post_init__`` refuses to start unless POSTGRES_USER/PASSWORD/DATABASE are in
  the environment; MilvusVectorDBStorage likewise reads only MILVUS_URI/MILVUS_DB_NAME, and
  tiktoken its cache directory. :func:`lightrag_environment` computes exactly those variables
  from EngineConfig and :func:`build_rag` exports them once per engine start through
  ``settings.export_lightrag_environment``, which accepts only the names of
  ``settings.LIGHTRAG_ENVIRONMENT`` (listed there with the library code that reads each).
  One process therefore serves one PostgreSQL database and one Milvus Lite directory.
- The default tokenizer (tiktoken) downloads its encoding on first use. The offline engine uses
  a local byte tokenizer; the lightrag engine uses tiktoken with a pre-seeded cache
  (TIKTOKEN_CACHE_DIR, filled by the role) and refuses to start when the file is missing.
- lightrag-hku sets its logger to INFO with a console handler of its own at import
  (lightrag/utils.py) and logs ~20 INFO lines per document: on a busy worker that is CPU and
  journal spent on progress nobody reads. :func:`quiet_library_logs` keeps its warnings and
  errors (and everything when our own log level is DEBUG).
- Errors an LLM call raises are recorded by LightRAG as the failed document's ``error_msg``
  (``str(error)``); engines/ollama_binding.py raises Ollama's 429/503 and timeouts with
  OVERLOAD_MARKER in the message so the engine can turn them into EngineOverloaded.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from lightrag import LightRAG
from lightrag.utils import EmbeddingFunc, TiktokenTokenizer, Tokenizer

from shield_orchestrator import settings
from shield_orchestrator.engines import offline_extract, storage_guard
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.ollama_binding import EmbedFunc as OllamaEmbedFunc
from shield_orchestrator.errors import ConfigError

LlmFunc = Callable[..., Awaitable[str]]
EmbedFunc = Callable[[list[str]], Awaitable[npt.NDArray[Any]]]

FILE_STORAGES = {
    "kv_storage": "JsonKVStorage",
    "doc_status_storage": "JsonDocStatusStorage",
    "graph_storage": "NetworkXStorage",
}
PG_STORAGES = {
    "kv_storage": "PGKVStorage",
    "doc_status_storage": "PGDocStatusStorage",
    "graph_storage": "PGTableGraphStorage",
}
# tiktoken's download URL per encoding; its cache file is named sha1(url) in TIKTOKEN_CACHE_DIR.
_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


VECTOR_STORAGES = {
    "postgres": "PGVectorStorage",
    "milvus": "MilvusVectorDBStorage",
    "file": "NanoVectorDBStorage",
}
MILVUS_DB_NAME = "default"  # Milvus Lite's own database; collections are named per workspace


def storage_names(config: EngineConfig) -> dict[str, str]:
    names = dict(PG_STORAGES if config.storage == "postgres" else FILE_STORAGES)
    names["vector_storage"] = VECTOR_STORAGES[config.vector_storage]
    return names


def uses_postgres(config: EngineConfig) -> bool:
    return config.storage == "postgres" or config.vector_storage == "postgres"


def postgres_environment(config: EngineConfig) -> dict[str, str]:
    """The POSTGRES_* variables LightRAG's PG storages read (ClientManager.get_config)."""
    if config.postgres_password is None:
        raise ConfigError("SHIELD_POSTGRES_PASSWORD", "", "Required by the PostgreSQL storages.")
    return {
        "POSTGRES_HOST": config.postgres_host,
        "POSTGRES_PORT": str(config.postgres_port),
        "POSTGRES_USER": config.postgres_user,
        "POSTGRES_PASSWORD": config.postgres_password,
        "POSTGRES_DATABASE": config.postgres_db,
        # non-empty, it would replace every instance's workspace in the process (one graph for
        # all): empty, each storage keys its rows by its own LightRAG instance's workspace
        "POSTGRES_WORKSPACE": "",
        "POSTGRES_MAX_CONNECTIONS": str(config.postgres_pool_size),
        "POSTGRES_VECTOR_INDEX_TYPE": config.postgres_vector_index,
        # TLS (settings.py): LightRAG builds a verify-full context from these; "" = plaintext
        "POSTGRES_SSL_MODE": "verify-full" if config.postgres_tls else "",
        "POSTGRES_SSL_ROOT_CERT": config.tls_ca_file if config.postgres_tls else "",
    }


def lightrag_environment(config: EngineConfig) -> dict[str, str]:
    """Every variable LightRAG reads from the environment for ``config``, and only those:
    its PG storages', Milvus Lite's and tiktoken's (settings.LIGHTRAG_ENVIRONMENT)."""
    values: dict[str, str] = {}
    if uses_postgres(config):
        values.update(postgres_environment(config))
    if config.vector_storage == "milvus":
        values["MILVUS_URI"] = storage_guard.milvus_uri(config.working_dir)
        values["MILVUS_DB_NAME"] = MILVUS_DB_NAME
        values["MILVUS_WORKSPACE"] = ""  # as POSTGRES_WORKSPACE: each instance's own workspace
    if config.tokenizer == "tiktoken":
        values["TIKTOKEN_CACHE_DIR"] = config.tiktoken_cache_dir
    return values


def _import_pymilvus_before_milvus_uri() -> None:
    """pymilvus reads MILVUS_URI once, at import, and accepts only http(s) URIs there.

    LightRAG requires MILVUS_URI in the environment (check_storage_env_vars) and hands it to
    ``MilvusClient``, which does take a local Milvus Lite path. Importing pymilvus before the
    variable is published keeps its import-time default connection empty.
    """
    import pymilvus.orm.connections  # noqa: F401


def check_no_leftovers(config: EngineConfig) -> None:
    """Refuse to start on new storages while the old ones hold this workspace's graph."""
    found = storage_guard.leftovers(
        config.working_dir, config.workspace, config.storage, config.vector_storage
    )
    if found:
        raise ConfigError(
            "orchestrator_engine_storage",
            config.storage,
            storage_guard.problem(found, config.workspace, config.storage, config.vector_storage),
        )


def tiktoken_cache_file(config: EngineConfig) -> Path:
    """Where tiktoken looks for the encoding of ``config.tiktoken_model`` (no download)."""
    import tiktoken

    try:
        encoding = tiktoken.encoding_name_for_model(config.tiktoken_model)
    except KeyError as exc:
        raise ConfigError(
            "orchestrator_engine_tiktoken_model",
            config.tiktoken_model,
            "tiktoken does not know this model.",
        ) from exc
    url = _TIKTOKEN_URL.format(encoding)
    return Path(config.tiktoken_cache_dir) / hashlib.sha1(url.encode()).hexdigest()  # noqa: S324


def make_tokenizer(config: EngineConfig) -> Tokenizer:
    """A tokenizer that never downloads: bytes, or tiktoken from its pre-seeded cache (tiktoken
    finds it through TIKTOKEN_CACHE_DIR, exported by :func:`build_rag` before it calls this)."""
    if config.tokenizer == "bytes":
        return Tokenizer(model_name="shield-bytes", tokenizer=offline_extract.ByteCodec())
    cached = tiktoken_cache_file(config)
    if not cached.is_file():
        raise ConfigError(
            "orchestrator_engine_tiktoken_cache_dir",
            config.tiktoken_cache_dir,
            f"The tokenizer file {cached.name} (for {config.tiktoken_model}) is missing; the "
            "role pre-seeds it (see README, Engines) because nothing may be downloaded at start.",
        )
    return TiktokenTokenizer(config.tiktoken_model)


def quiet_library_logs() -> None:
    """LightRAG's logger at WARNING, unless this process logs at DEBUG (module docstring)."""
    import logging

    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("lightrag").setLevel(logging.DEBUG if debug else logging.WARNING)


def build_rag(
    config: EngineConfig,
    *,
    llm_func: LlmFunc,
    llm_kwargs: dict[str, Any],
    embedding: EmbeddingFunc,
    llm_model_name: str,
) -> LightRAG:
    """A LightRAG instance (storages not yet initialised) for ``config.workspace``, with its
    tokenizer (:func:`make_tokenizer`); called once per engine start."""
    quiet_library_logs()
    check_no_leftovers(config)
    if config.vector_storage == "milvus":
        _import_pymilvus_before_milvus_uri()
    # what LightRAG reads only from the environment (module docstring), before the tokenizer
    # (tiktoken reads its cache directory at once) and LightRAG (its __post_init__ checks)
    settings.export_lightrag_environment(lightrag_environment(config))
    tokenizer = make_tokenizer(config)
    Path(config.working_dir).mkdir(parents=True, exist_ok=True)
    return LightRAG(
        working_dir=config.working_dir,
        workspace=config.workspace,
        **storage_names(config),
        tokenizer=tokenizer,
        chunk_token_size=config.chunk_token_size,
        chunk_overlap_token_size=min(100, config.chunk_token_size // 10),
        embedding_func=embedding,
        embedding_func_max_async=config.embedding_max_async,
        llm_model_func=llm_func,
        llm_model_name=llm_model_name,
        llm_model_kwargs=llm_kwargs,
        llm_model_max_async=config.llm_model_max_async,
        default_llm_timeout=int(config.ollama_llm_timeout_s),
        max_parallel_insert=config.max_parallel_insert,
        entity_extract_max_gleaning=0,
        enable_llm_cache=False,  # query answers: not cached (the graph changes under them)
        # Extraction cached (LightRAG's llm_response_cache, keyed by the prompt's text): a
        # re-ingested chunk whose text is unchanged costs no LLM call (a repository's unchanged
        # functions, issue 16), and adelete_by_doc_id rebuilds the entities and relations left
        # behind from these cached extractions instead of calling the LLM again.
        enable_llm_cache_for_entity_extract=True,
        auto_manage_storages_states=False,
    )


# --- Ollama (engine lightrag): engines/ollama_binding.py ---------------------------------------


def ollama_embedding(config: EngineConfig, embed: OllamaEmbedFunc) -> EmbeddingFunc:
    return EmbeddingFunc(
        embedding_dim=config.ollama_embedding_dim,
        max_token_size=config.ollama_num_ctx,
        func=embed,
        model_name=config.ollama_embedding_model,
    )


# --- offline (no LLM) ---------------------------------------------------------------------------


def offline_llm(max_entities: int) -> LlmFunc:
    async def answer(
        prompt: str,
        system_prompt: str | None = None,
        history_messages: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> str:
        await asyncio.sleep(0)  # a real await point, like a model call
        return offline_extract.answer(prompt, system_prompt, max_entities)

    return answer


def offline_embedding(config: EngineConfig) -> EmbeddingFunc:
    dim = config.offline_embedding_dim

    async def embed(texts: list[str], **_: Any) -> npt.NDArray[np.float32]:
        return offline_extract.hashed_embedding(texts, dim)

    return EmbeddingFunc(
        embedding_dim=dim,
        max_token_size=config.chunk_token_size,
        func=embed,
        model_name=f"shield-offline-hashed-{dim}",
    )
