"""Pure logic of the API: API-key parsing and matching, request models, digest, messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError


def test_api_keys_are_parsed_and_placeholders_refused() -> None:
    from shield_orchestrator.errors import ConfigError
    from shield_orchestrator.settings import Settings, parse_api_keys, require_api_keys

    assert parse_api_keys(" a" * 0 + "k" * 16 + " , " + "z" * 20 + ",") == ("k" * 16, "z" * 20)
    assert parse_api_keys(None) == parse_api_keys("") == ()
    for bad in ("changeme", "CHANGEME", "ok-key-of-16-chars,secret"):
        with pytest.raises(ConfigError, match=r"SHIELD_API_KEYS.*placeholder"):
            parse_api_keys(bad)
    with pytest.raises(ConfigError, match="SHIELD_API_KEYS") as short:
        parse_api_keys("tiny-key")
    assert "tiny-key" not in str(short.value)
    with pytest.raises(ConfigError, match="SHIELD_API_KEYS"):
        require_api_keys(Settings())
    assert "k" * 16 not in repr(Settings(api_keys=("k" * 16,)))


def test_key_ring_matches_any_configured_key_only() -> None:
    from shield_orchestrator.api.auth import KeyRing

    ring = KeyRing(["a" * 20, "b" * 20])
    assert ring.matches("a" * 20)
    assert ring.matches("b" * 20)
    assert not ring.matches("a" * 19)
    assert not ring.matches("")
    assert not ring.matches("é" * 20)
    assert "a" * 20 not in repr(ring)
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])


def test_ingest_request_strips_and_validates() -> None:
    from shield_orchestrator.api.models import DEFAULT_WORKSPACE, IngestRequest

    req = IngestRequest.model_validate(
        {"chunks": [{"text": "  a  ", "source_uri": " u "}], "source_type": "t"}
    )
    assert (req.chunks[0].text, req.chunks[0].source_uri) == ("a", "u")
    assert req.workspace == DEFAULT_WORKSPACE
    for text in ("", "   ", "a\x00b"):
        with pytest.raises(ValidationError):
            IngestRequest.model_validate(
                {"chunks": [{"text": text, "source_uri": "u"}], "source_type": "t"}
            )


def test_digest_is_canonical_and_chunk_ids_are_one_based() -> None:
    """(What the enqueue script writes is checked against the contract's oracle on a real
    Redis: tests/integration/test_job_registry.py.)"""
    from shield_orchestrator.services.job_registry import NewChunk, NewJob, chunk_id

    a = NewJob([NewChunk("x", "u", {"b": 1, "a": 2})], "t", "default")
    b = NewJob([NewChunk("x", "u", {"a": 2, "b": 1})], "t", "default")
    c = NewJob([NewChunk("x", "u", {"a": 2})], "t", "default")
    assert a.digest() == b.digest() != c.digest()
    assert chunk_id(1) == "c000001"


def test_chunks_blob_frames_ids_and_bodies_for_the_enqueue_script() -> None:
    from shield_orchestrator.services.job_registry import NewChunk, NewJob, chunks_blob
    from shield_orchestrator.services.messages import chunk_body

    texts = ("plain", "two\nlines\r\n", "unicode é 漢字 😀 and \u2028 line separator")
    numbered = NewJob([NewChunk(t, f"u{i}", {"i": i}) for i, t in enumerate(texts)], "s", "w")
    parts = chunks_blob(numbered).split(b"\n")
    assert parts[0::2] == [f"c{n:06d}".encode() for n in range(1, len(texts) + 1)]
    assert parts[1::2] == [
        chunk_body(c.text, c.source_uri, "s", "w", c.metadata) for c in numbered.chunks
    ]
    kept = NewJob([NewChunk("a", "u", chunk_id="c000007"), NewChunk("b", "u")], "s", "w")
    assert chunks_blob(kept).split(b"\n")[0::2] == [b"c000007", b"c000002"]
    for bad in ("", "c1\nc2"):
        with pytest.raises(ValueError, match="chunk id"):
            chunks_blob(NewJob([NewChunk("a", "u", chunk_id=bad)], "s", "w"))


def test_no_dependency_of_the_api_runs_in_the_thread_pool() -> None:
    """FastAPI runs a plain ``def`` dependency in a worker thread: one hop per request each."""
    import inspect
    import typing

    from fastapi import params
    from shield_orchestrator.api import auth, deps

    aliases = [v for v in vars(deps).values() if typing.get_origin(v) is typing.Annotated]
    depends = [m for a in aliases for m in a.__metadata__ if isinstance(m, params.Depends)]
    assert len(depends) == len(aliases) >= 6
    for dep in [*depends, params.Depends(auth.require_api_key)]:
        assert inspect.iscoroutinefunction(dep.dependency), f"{dep.dependency!r} is sync"
