"""Pure logic of the API: API-key parsing and matching, request models, digest, messages."""

from __future__ import annotations

import json

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


def test_digest_is_canonical_and_messages_follow_the_contract() -> None:
    from shield_orchestrator.services.job_registry import NewChunk, NewJob, chunk_id, chunk_message

    a = NewJob([NewChunk("x", "u", {"b": 1, "a": 2})], "t", "default")
    b = NewJob([NewChunk("x", "u", {"a": 2, "b": 1})], "t", "default")
    c = NewJob([NewChunk("x", "u", {"a": 2})], "t", "default")
    assert a.digest() == b.digest() != c.digest()
    assert chunk_id(1) == "c000001"
    fields = chunk_message("j", "c000001", NewChunk("x", "u"), "t", "w")
    assert set(fields) == {"v", "kind", "job_id", "chunk_id", "body"}
    assert json.loads(fields["body"]) == {
        "text": "x",
        "source_uri": "u",
        "source_type": "t",
        "workspace": "w",
        "metadata": {},
    }
