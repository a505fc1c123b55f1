"""LightRAG's LLM and embedding hooks over Ollama, with ONE HTTP client per engine.

Why not lightrag.llm.ollama (``ollama_model_complete`` / ``ollama_embed``): lightrag-hku 1.5.7
builds a new ``ollama.AsyncClient`` for every call (lightrag/llm/ollama.py:
``_ollama_model_if_cache`` and ``ollama_embed``), and each one builds an httpx client whose
SSL context loads the CA bundle synchronously (``SSLContext.load_verify_locations``, 0.1-0.2 s
on these machines) *on the event loop*, even for plain http. With one LLM call and about two
embedding calls per chunk that stalled every other coroutine of the process, capped a worker
at ~1.5 chunks/s whatever the model's speed (bench/bench_engines.py), and reopened a TCP
connection per call. Here one ``ollama.AsyncClient`` per engine keeps its connection pool.

What LightRAG passes and what we do with it (everything else is accepted and ignored):
``system_prompt`` and ``history_messages`` -> chat messages; ``response_format`` of type
``json_object`` or the legacy ``keyword_extraction`` / ``entity_extraction`` flags -> Ollama's
``format="json"``; ``max_tokens`` -> ``options.num_predict``. Answers are never streamed (an
ingestion engine). Ollama's 429/503 and timeouts are raised as :class:`LLMOverloadedError`,
whose message (LightRAG stores ``str(error)`` as the failed document's ``error_msg``) starts
with OVERLOAD_MARKER so the engine can back the pool off instead of spending a retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import ollama

from shield_orchestrator.engines.config import EngineConfig

OVERLOAD_MARKER = "[shield: LLM overloaded]"
OVERLOAD_STATUS = frozenset({429, 503})


LlmFunc = Callable[..., Awaitable[str]]
EmbedFunc = Callable[..., Awaitable[npt.NDArray[Any]]]


class LLMOverloadedError(RuntimeError):
    """The model server answered 429/503 or timed out (message starts with OVERLOAD_MARKER)."""


def _overloaded(what: str, exc: BaseException) -> LLMOverloadedError:
    return LLMOverloadedError(f"{OVERLOAD_MARKER} {what}: {type(exc).__name__}: {exc}")


async def _call(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except ollama.ResponseError as exc:
        if exc.status_code in OVERLOAD_STATUS:
            raise _overloaded(f"Ollama {what} answered {exc.status_code}", exc) from exc
        raise
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise _overloaded(f"Ollama {what} timed out", exc) from exc


def _wants_json(kwargs: dict[str, Any]) -> bool:
    response_format = kwargs.get("response_format")
    if isinstance(response_format, dict):
        return response_format.get("type") == "json_object"
    return bool(kwargs.get("keyword_extraction") or kwargs.get("entity_extraction"))


class OllamaBinding:
    """``complete`` is LightRAG's ``llm_model_func``, ``embed`` its embedding function
    (hand them over through :meth:`functions`)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._chat_client: ollama.AsyncClient | None = None
        self._embed_client: ollama.AsyncClient | None = None

    def _new_client(self, timeout_s: float) -> ollama.AsyncClient:
        key = self.config.ollama_api_key
        headers = {"Authorization": f"Bearer {key}"} if key else None
        return ollama.AsyncClient(
            host=self.config.ollama_endpoint, timeout=timeout_s or None, headers=headers
        )

    @property
    def chat_client(self) -> ollama.AsyncClient:
        if self._chat_client is None:
            self._chat_client = self._new_client(self.config.ollama_llm_timeout_s)
        return self._chat_client

    @property
    def embed_client(self) -> ollama.AsyncClient:
        if self._embed_client is None:
            self._embed_client = self._new_client(self.config.ollama_embedding_timeout_s)
        return self._embed_client

    async def complete(
        self,
        prompt: str,
        system_prompt: str | None = None,
        history_messages: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> str:
        messages: list[dict[str, Any]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.extend(history_messages or [])
        messages.append({"role": "user", "content": prompt})
        options: dict[str, Any] = {"num_ctx": self.config.ollama_num_ctx}
        if kwargs.get("max_tokens"):
            options["num_predict"] = int(kwargs["max_tokens"])
        response = await _call(
            "chat",
            lambda: self.chat_client.chat(
                model=self.config.ollama_llm_model,
                messages=messages,
                options=options,
                format="json" if _wants_json(kwargs) else None,
                stream=False,
            ),
        )
        return str(response.message.content or "")

    async def embed(self, texts: list[str], **_: Any) -> npt.NDArray[Any]:
        response = await _call(
            "embed",
            lambda: self.embed_client.embed(model=self.config.ollama_embedding_model, input=texts),
        )
        return np.asarray(response.embeddings, dtype=np.float32)

    def functions(self) -> tuple[LlmFunc, EmbedFunc]:
        """``complete`` and ``embed`` as plain functions: LightRAG deep-copies its config
        (dataclasses.asdict), which would copy a bound method's client; a function is kept."""

        async def complete(prompt: str, *args: Any, **kwargs: Any) -> str:
            return await self.complete(prompt, *args, **kwargs)

        async def embed(texts: list[str], **kwargs: Any) -> npt.NDArray[Any]:
            return await self.embed(texts, **kwargs)

        return complete, embed

    async def aclose(self) -> None:
        for client in (self._chat_client, self._embed_client):
            if client is not None:
                await client.close()  # type: ignore[no-untyped-call]  # ollama 0.6.3
        self._chat_client = self._embed_client = None
