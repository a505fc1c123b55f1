"""The ``delete_document`` kind of the message contract (services/messages.py): its body's
encoder and parser, the document ids of ingested chunks, and what the pool's handler makes of a
bad body (a malformed outcome naming the field: dead-lettered at once, never retried)."""

from __future__ import annotations

import json

import pytest
from shield_orchestrator.engines.lightrag_inproc import document_id
from shield_orchestrator.errors import MalformedMessage
from shield_orchestrator.services.messages import (
    DELETE_DOCUMENT,
    KINDS,
    MAX_DELETE_IDS,
    chunk_document_id,
    delete_body,
    parse_delete_body,
    parse_envelope,
)
from shield_orchestrator.workers.lightrag_processor import delete_input

JOB = "0b5e1d7a-3c2f-4f7e-9a51-2f1d6c3b9e40"


def test_delete_body_round_trips_without_a_newline_byte() -> None:
    ids = ["shield-a-c000001", "doc-é漢字", "x:y"]
    raw = delete_body("code", ids, "repo:r/a\nb.py")
    assert b"\n" not in raw
    assert json.loads(raw) == {"workspace": "code", "doc_ids": ids, "source_uri": "repo:r/a\nb.py"}
    body = parse_delete_body(raw.decode())
    assert body == ("code", tuple(ids), "repo:r/a\nb.py")


def test_delete_body_defaults_the_workspace_as_ingest_chunks_do() -> None:
    assert parse_delete_body('{"doc_ids": ["d1"]}') == ("default", ("d1",), "")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[]", "body is not a JSON object"),
        ("{nope", "body is not JSON"),
        ("{}", r"body\.doc_ids is missing"),
        ('{"doc_ids": []}', r"body\.doc_ids is missing or not a non-empty list"),
        ('{"doc_ids": "d1"}', r"body\.doc_ids is missing or not a non-empty list"),
        ('{"doc_ids": ["d1", 7]}', r"body\.doc_ids\[1\] is not a document id"),
        ('{"doc_ids": ["d1", ""]}', r"body\.doc_ids\[1\] is not a document id"),
        ('{"doc_ids": ["a b"]}', r"body\.doc_ids\[0\] is not a document id"),
        ('{"doc_ids": ["d1", "d1"]}', r"body\.doc_ids holds an id twice"),
        ('{"doc_ids": ["d1"], "workspace": 3}', r"body\.workspace is not a string"),
        ('{"doc_ids": ["d1"], "source_uri": []}', r"body\.source_uri is not a string"),
    ],
)
def test_a_bad_delete_body_names_the_field(body: str, problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        parse_delete_body(body)


def test_too_many_ids_in_one_entry() -> None:
    ids = [f"d{n}" for n in range(MAX_DELETE_IDS + 1)]
    with pytest.raises(MalformedMessage, match=f"at most {MAX_DELETE_IDS}"):
        parse_delete_body(json.dumps({"doc_ids": ids}))
    assert parse_delete_body(json.dumps({"doc_ids": ids[:-1]})).doc_ids == tuple(ids[:-1])


def test_the_kind_is_in_the_contract() -> None:
    fields = {"v": "1", "kind": DELETE_DOCUMENT, "job_id": JOB, "chunk_id": "c000001",
              "body": delete_body("w", ["d"], "")}  # fmt: skip
    assert DELETE_DOCUMENT in KINDS
    assert parse_envelope("1-0", {k: str(v) for k, v in fields.items()}).kind == DELETE_DOCUMENT


def test_the_producers_document_id_is_the_engines() -> None:
    """The indexer names an ingested chunk's document with messages.chunk_document_id; the
    in-process engines store it under engines/lightrag_inproc.document_id: the same id."""
    from shield_orchestrator.engines.base import ChunkInput

    chunk = ChunkInput(job_id=JOB, chunk_id="c000003", text="t", source_uri="u")
    assert chunk_document_id(JOB, "c000003") == document_id(chunk) == f"shield-{JOB}-c000003"


def test_delete_input_is_the_parsed_body_with_the_attempt() -> None:
    raw = delete_body("code", ["d1", "d2"], "repo:r/a.py").decode()
    request = delete_input(JOB, "c000002", raw, attempt=3)
    assert (request.job_id, request.chunk_id, request.attempt) == (JOB, "c000002", 3)
    assert (request.workspace, request.doc_ids, request.source_uri) == (
        "code", ("d1", "d2"), "repo:r/a.py",
    )  # fmt: skip


async def test_a_bad_delete_body_is_a_malformed_outcome_naming_the_field() -> None:
    """The pool's handler: no engine call, FAILED at attempt 0 (the dead letter at once) with
    the field in the error, and the ids kept so that the job counts the entry as failed."""
    from shield_orchestrator.engines.noop import NoopEngine
    from shield_orchestrator.services.metrics import WorkerMetrics
    from shield_orchestrator.services.retry import RetryPolicy
    from shield_orchestrator.workers.handlers import make_handlers
    from shield_orchestrator.workers.lightrag_processor import ChunkProcessor

    engine = NoopEngine()
    handlers = make_handlers(ChunkProcessor(engine, 5.0), RetryPolicy(), WorkerMetrics(), 1.0)
    fields = {"v": "1", "kind": DELETE_DOCUMENT, "job_id": JOB, "chunk_id": "c000001",
              "body": '{"workspace": "w", "doc_ids": ["d1", 2]}'}  # fmt: skip
    envelope = parse_envelope("5-0", fields, handlers)
    outcome = await handlers[envelope.kind](envelope)
    assert (outcome.job_id, outcome.chunk_id, outcome.outcome, outcome.attempts) == (
        JOB, "c000001", "failed", 0,
    )  # fmt: skip
    assert outcome.kind == DELETE_DOCUMENT
    assert outcome.error == "malformed: body.doc_ids[1] is not a document id"
    assert not engine.deletions

    good = {**fields, "body": '{"workspace": "w", "doc_ids": ["d1", "d2"]}'}
    outcome = await handlers[DELETE_DOCUMENT](parse_envelope("6-0", good, handlers))
    assert (outcome.outcome, outcome.attempts) == ("processed", 1)
    assert engine.deletions == {"d1": 1, "d2": 1}
