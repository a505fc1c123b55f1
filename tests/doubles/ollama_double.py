"""An Ollama-protocol HTTP test double: a real HTTP server on a free loopback port.

Speaks what the ``ollama`` Python client sends and expects (ollama 0.5/0.6 wire format):

    POST /api/chat      {model, messages, stream, options, format?, think?}
                        -> {model, created_at, message: {role, content}, done, done_reason, ...}
    POST /api/generate  {model, prompt, ...} -> {model, created_at, response, done, ...}
    POST /api/embed     {model, input: [str], options?, dimensions?} -> {model, embeddings}
    GET  /api/tags      -> {models: [{name, model, modified_at, size, digest, details}]}

Errors are answered like Ollama does (``{"error": "..."}`` with the status code), which the
client raises as ``ollama.ResponseError(error, status_code)``.

Chat answers are deterministic: for LightRAG's entity-extraction prompt, the capitalised words
of the chunk become entities and consecutive ones relations, written in LightRAG's delimiter
format; for the keyword prompt a keyword JSON; anything else a fixed sentence. Knobs:
``latency_s`` / ``embed_latency_s`` per call, ``fail_when`` (substring of the chunk -> HTTP
status), ``fail_next`` (the next N chat calls answer a status), ``hang_s`` (sleep that long:
a client timeout). Counters: ``calls`` per endpoint, ``max_in_flight`` chat calls,
``max_embed_in_flight`` embedding calls, ``connections`` (path, client port) seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import LOOPBACK, free_port

DELIM = "<|#|>"
COMPLETE = "<|COMPLETE|>"
_FENCE = re.compile(r"---Input Text---\s*```\n?(.*?)\n?```", re.DOTALL)
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")


def expected_entities(text: str) -> list[str]:
    """The entities the double extracts from ``text`` (capitalised words, first-seen order)."""
    seen: dict[str, None] = {}
    for word in _CAPITALISED.findall(text):
        seen.setdefault(word, None)
    return list(seen)


def expected_relations(text: str) -> list[tuple[str, str]]:
    names = expected_entities(text)
    return list(itertools.pairwise(names))


def extraction_answer(text: str) -> str:
    lines = [
        f"entity{DELIM}{n}{DELIM}Concept{DELIM}{n} appears in the text."
        for n in expected_entities(text)
    ]
    lines += [
        f"relation{DELIM}{a}{DELIM}{b}{DELIM}mentioned together{DELIM}{a} precedes {b}."
        for a, b in expected_relations(text)
    ]
    return "\n".join([*lines, COMPLETE])


@dataclass
class OllamaDouble:
    latency_s: float = 0.0
    embed_latency_s: float = 0.0
    embedding_dim: int = 16
    hang_s: float = 0.0
    fail_when: dict[str, int] = field(default_factory=dict)  # chunk substring -> HTTP status
    fail_next: list[int] = field(default_factory=list)  # statuses for the next chat calls
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    embed_in_flight: int = 0
    max_embed_in_flight: int = 0
    api_keys_seen: set[str] = field(default_factory=set)
    connections: set[tuple[str, int]] = field(default_factory=set)  # (path, client port)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- handlers ---------------------------------------------------------------------------
    def _answer(self, messages: list[dict[str, Any]]) -> str | int:
        user = next(
            (m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), ""
        )
        chunk = _FENCE.search(user)
        if chunk is not None:
            for needle, status in self.fail_when.items():
                if needle in chunk.group(1):
                    return status
            return extraction_answer(chunk.group(1))
        if "User Query:" in user:
            words = expected_entities(user.split("User Query:", 1)[1])
            import json

            return json.dumps({"high_level_keywords": words[:2], "low_level_keywords": words})
        return "The double has no answer beyond the retrieved context."

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self._seen(request)
        self.calls["chat"] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hang_s:
                await asyncio.sleep(self.hang_s)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"error": f"double: injected {status}"}, status_code=status)
            answer = self._answer(list(body.get("messages") or []))
        finally:
            self.in_flight -= 1
        if isinstance(answer, int):
            return JSONResponse(
                {"error": f"double: injected {answer} for this chunk"}, status_code=answer
            )
        return JSONResponse(
            {
                "model": body.get("model", ""),
                "created_at": _now(),
                "message": {"role": "assistant", "content": answer},
                "done": True,
                "done_reason": "stop",
                "total_duration": 1,
                "load_duration": 1,
                "prompt_eval_count": 10,
                "prompt_eval_duration": 1,
                "eval_count": len(answer) // 4,
                "eval_duration": 1,
            }
        )

    async def generate(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls["generate"] += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        answer = self._answer([{"role": "user", "content": body.get("prompt", "")}])
        return JSONResponse(
            {
                "model": body.get("model", ""),
                "created_at": _now(),
                "response": str(answer),
                "done": True,
                "done_reason": "stop",
            }
        )

    async def embed(self, request: Request) -> JSONResponse:
        body = await request.json()
        self._seen(request)
        self.calls["embed"] += 1
        self.embed_in_flight += 1
        self.max_embed_in_flight = max(self.max_embed_in_flight, self.embed_in_flight)
        try:
            if self.embed_latency_s:
                await asyncio.sleep(self.embed_latency_s)
        finally:
            self.embed_in_flight -= 1
        texts = body.get("input") or []
        texts = [texts] if isinstance(texts, str) else texts
        dim = int(body.get("dimensions") or self.embedding_dim)
        return JSONResponse(
            {
                "model": body.get("model", ""),
                "embeddings": [_vector(t, dim) for t in texts],
                "prompt_eval_count": len(texts),
            }
        )

    async def tags(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": "double:latest",
                        "model": "double:latest",
                        "modified_at": _now(),
                        "size": 1,
                        "digest": "0" * 64,
                        "details": {"format": "gguf", "family": "double"},
                    }
                ]
            }
        )

    def _seen(self, request: Request) -> None:
        if request.client is not None:
            self.connections.add((request.url.path, request.client.port))
        auth = request.headers.get("authorization", "")
        if auth:
            self.api_keys_seen.add(auth.removeprefix("Bearer "))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat", self.chat, methods=["POST"]),
                Route("/api/generate", self.generate, methods=["POST"]),
                Route("/api/embed", self.embed, methods=["POST"]),
                Route("/api/tags", self.tags, methods=["GET"]),
            ]
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _vector(text: str, dim: int) -> list[float]:
    """Deterministic unit vector from the text's words (hashed bag of words)."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


@contextlib.contextmanager
def serve_http(app: Any) -> Iterator[int]:
    """Run an ASGI app under uvicorn in a thread on a free loopback port; yield the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=LOOPBACK, port=port, log_level="error", lifespan="off", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name=f"http-double-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"HTTP double did not start on {LOOPBACK}:{port}")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


class HttpDouble(Protocol):
    port: int

    def app(self) -> Starlette: ...


Double = TypeVar("Double", bound=HttpDouble)


@contextlib.contextmanager
def serving(double: Double) -> Iterator[Double]:
    """Serve ``double.app()`` on a free loopback port (set as ``double.port``) while inside."""
    with serve_http(double.app()) as port:
        double.port = port
        yield double


def ollama_double(**knobs: Any) -> contextlib.AbstractContextManager[OllamaDouble]:
    return serving(OllamaDouble(**knobs))
