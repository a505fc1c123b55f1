"""The message contract (services/messages.py): envelope, kinds, the ingest_chunk body.

What the enqueue script really writes is compared with the tests' own oracle on a real Redis
(tests/integration/test_job_registry.py); here the contract's functions, without Redis.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from shield_orchestrator.errors import MalformedMessage, UnknownKind
from shield_orchestrator.services.messages import (
    FIELDS,
    INGEST_CHUNK,
    KINDS,
    MESSAGE_VERSION,
    chunk_body,
    parse_chunk_body,
    parse_envelope,
    readable_ids,
)

JOB = "0b5e1d7a-3c2f-4f7e-9a51-2f1d6c3b9e40"
GOOD = {"v": "1", "kind": "ingest_chunk", "job_id": JOB, "chunk_id": "c000001", "body": "{}"}


def test_the_contract_constants_are_what_the_docs_say() -> None:
    """ARCHITECTURE.md, "A chunk message": v = 1, two kinds, five fields."""
    assert (MESSAGE_VERSION, INGEST_CHUNK) == ("1", "ingest_chunk")
    assert KINDS == ("ingest_chunk", "delete_document")
    assert FIELDS == ("v", "kind", "job_id", "chunk_id", "body") == tuple(GOOD)


def test_envelope_of_a_good_message() -> None:
    env = parse_envelope("1-0", GOOD)
    assert (env.entry_id, env.kind, env.job_id, env.chunk_id) == (
        "1-0",
        "ingest_chunk",
        JOB,
        "c000001",
    )
    assert env.body == "{}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"v": "2"}, "unsupported message version '2'"),
        ({"v": ""}, "unsupported message version ''"),
        ({"job_id": "../../etc"}, "job_id"),
        ({"chunk_id": ""}, "chunk_id"),
        ({"chunk_id": "a b"}, "chunk_id"),
    ],
)
def test_malformed_envelopes(change: dict[str, str], problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        parse_envelope("1-0", {**GOOD, **change})


def test_deleted_entry_has_no_fields() -> None:
    with pytest.raises(MalformedMessage, match="deleted"):
        parse_envelope("1-0", {})


@pytest.mark.parametrize("kind", ["rename_document", "", "INGEST_CHUNK"])
def test_an_unknown_kind_is_a_permanent_error_naming_the_kind(kind: str) -> None:
    with pytest.raises(UnknownKind, match=f"unknown message kind {kind!r}") as info:
        parse_envelope("1-0", {**GOOD, "kind": kind})
    assert info.value.kind == kind
    assert isinstance(info.value, MalformedMessage)  # dead-lettered at once, never retried


def test_the_reader_names_the_kinds_it_handles() -> None:
    """A second kind is one more name for the same envelope: a reader that handles it
    accepts it, one that does not refuses it by name."""
    deletion = {**GOOD, "kind": "delete_document", "body": '{"doc_id": "d1"}'}
    env = parse_envelope("1-0", deletion, kinds=(INGEST_CHUNK, "delete_document"))
    assert (env.kind, env.job_id, env.chunk_id) == ("delete_document", JOB, "c000001")
    with pytest.raises(UnknownKind, match="'delete_document'"):
        parse_envelope("1-0", deletion, kinds=(INGEST_CHUNK,))
    with pytest.raises(UnknownKind, match="'ingest_chunk'"):
        parse_envelope("1-0", GOOD, kinds=("delete_document",))


def test_readable_ids_of_a_malformed_entry() -> None:
    assert readable_ids(GOOD) == (JOB, "c000001")
    assert readable_ids({**GOOD, "job_id": "nope"}) == ("", "c000001")
    assert readable_ids({**GOOD, "chunk_id": "x" * 300}) == ("", "x" * 128)
    assert readable_ids({}) == readable_ids(None) == ("", "")


TRICKY_TEXTS = (
    "plain",
    "two\nlines\r\nand a tab\t and \x1f control",
    'quotes " and \\ backslash and a literal \\n',
    "unicode é 漢字 😀 and \u2028 line separator",
)


def test_chunk_body_is_the_json_of_the_contract_without_a_newline_byte() -> None:
    metas: tuple[Any, ...] = (
        None,
        {},
        {"page": 7, "tags": ["a", {"b": None}], "x": 1.5e-7, "big": 2**70, "ok": True},
        MappingProxyType({"k": "v\n"}),
    )
    for text in TRICKY_TEXTS:
        for meta in metas:
            raw = chunk_body(text, "file:///a b\n.txt", "type\n", "work space", meta)
            assert b"\n" not in raw
            assert json.loads(raw) == {
                "text": text,
                "source_uri": "file:///a b\n.txt",
                "source_type": "type\n",
                "workspace": "work space",
                "metadata": dict(meta or {}),
            }
            # What json.dumps writes for the same body, value for value.
            assert json.loads(raw) == json.loads(
                json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
            )
            # What the pool reads back is what the API was given.
            back = parse_chunk_body(raw.decode(), JOB, "c1")
            assert (back.text, back.source_uri, back.metadata) == (
                text,
                "file:///a b\n.txt",
                dict(meta or {}),
            )
    nan = json.loads(chunk_body("t", "u", "s", "w", {"n": float("nan")}))
    assert nan["metadata"]["n"] != nan["metadata"]["n"]  # NaN survives, as json.dumps writes it


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{", "body is not JSON"),
        ("[]", "body is not a JSON object"),
        ("{}", "body.text is missing or empty"),
        ('{"text": "  "}', "body.text is missing or empty"),
        ('{"text": 3}', "body.text is missing or empty"),
        ('{"text": "t", "metadata": 3}', "body.metadata is not an object"),
    ],
)
def test_chunk_body_problems(body: str, problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        parse_chunk_body(body, JOB, "c1")


def test_chunk_body_defaults() -> None:
    body = parse_chunk_body(json.dumps({"text": "hello", "metadata": None}), JOB, "c1")
    assert body == ("hello", f"shield://{JOB}/c1", "text", "default", {})
