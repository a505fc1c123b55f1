"""The message contract of the ingestion stream: what the API writes and the pool reads.

One entry of ``keys.INGESTION_STREAM`` per unit of work; every field is a string::

    v         MESSAGE_VERSION; an entry of another version is dead-lettered, never guessed at
    kind      what the entry asks for: it picks the body's layout and the pool's handler
    job_id    the job's UUID
    chunk_id  unique in the job (the producer numbers them c000001, c000002, ... by default)
    body      a JSON object whose layout ``kind`` gives

Kinds (a union discriminated by ``kind``)::

    ingest_chunk     {text, source_uri, source_type, workspace, metadata}
                     written by chunk_body, read by parse_chunk_body
    delete_document  {workspace, doc_ids, source_uri}: take these documents (LightRAG doc
                     ids, 1 to MAX_DELETE_IDS, unique) out of the workspace's graph; an id
                     already gone counts as deleted (a retried deletion succeeds)
                     written by delete_body, read by parse_delete_body

Both go through the pool to the workspace's owning process (one writer per workspace): the
repository indexer sends a job of ``delete_document`` entries for the documents of removed
and changed files before it ingests their new content. A third kind adds its name to KINDS,
its body's encoder and parser here, and a handler in the pool: the envelope, the enqueue
script (services/job_registry.ENQUEUE_LUA takes the kind as an argument) and the progress Lua
do not change. An entry whose kind the reader has no handler for raises
:class:`~shield_orchestrator.errors.UnknownKind`, which names the kind; like every
:class:`~shield_orchestrator.errors.MalformedMessage` it is permanent (dead-lettered at once).

The document an ``ingest_chunk`` entry makes in the in-process engines is named
:func:`chunk_document_id` (``shield-{job_id}-{chunk_id}``): a producer names the documents of
chunks it sent earlier that way (engines/lightrag_inproc.document_id is the same name; the
engines may not import this module, tests/unit/test_messages.py checks they agree).

The producer is ENQUEUE_LUA: it writes the fields in the order of FIELDS, with the version, the
kind and chunk_body's bytes passed in from here. tests/support/chunks.chunk_message is the
tests' oracle of the same layout, written without this module's encoder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic_core import to_json

from shield_orchestrator.errors import MalformedMessage, UnknownKind

MESSAGE_VERSION = "1"  # the "v" field this code writes and reads
INGEST_CHUNK = "ingest_chunk"  # one chunk of text into the engine's graph
DELETE_DOCUMENT = "delete_document"  # documents out of the engine's graph
KINDS: tuple[str, ...] = (INGEST_CHUNK, DELETE_DOCUMENT)  # every kind of the contract
MAX_DELETE_IDS = 1000  # doc ids in one delete_document entry (one file's documents)
FIELDS: tuple[str, ...] = ("v", "kind", "job_id", "chunk_id", "body")  # an entry, in order

JOB_ID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
CHUNK_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
DOC_ID = re.compile(r"^[^\s\x00-\x1f]{1,256}$")  # one LightRAG doc id: no blank, no control


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed entry: its id on the stream, the checked envelope fields, all its fields."""

    entry_id: str
    kind: str
    job_id: str
    chunk_id: str
    fields: Mapping[str, str]

    @property
    def body(self) -> str:
        return self.fields.get("body", "")


def parse_envelope(
    entry_id: str, fields: Mapping[str, str], kinds: Collection[str] = KINDS
) -> Envelope:
    """The envelope of a stream entry whose kind is in ``kinds`` (the reader's handlers).

    MalformedMessage names the first problem; UnknownKind when the kind is not in ``kinds``.
    """
    if not fields:
        raise MalformedMessage("entry has no fields (deleted from the stream)")
    version = fields.get("v", "")
    if version != MESSAGE_VERSION:
        raise MalformedMessage(f"unsupported message version {version!r}")
    job_id = fields.get("job_id", "")
    if not JOB_ID.match(job_id):
        raise MalformedMessage("job_id is missing or not a UUID")
    chunk_id = fields.get("chunk_id", "")
    if not CHUNK_ID.match(chunk_id):
        raise MalformedMessage("chunk_id is missing or invalid")
    kind = fields.get("kind", "")
    if kind not in kinds:
        raise UnknownKind(kind)
    return Envelope(entry_id, kind, job_id, chunk_id, fields)


def readable_ids(fields: Mapping[str, str] | None) -> tuple[str, str]:
    """``(job_id, chunk_id)`` of an entry that may be malformed: the job id is "" unless both
    ids are valid (then the job can count the entry as a failed chunk)."""
    job_id = fields.get("job_id", "") if fields else ""
    chunk_id = fields.get("chunk_id", "") if fields else ""
    if not (JOB_ID.match(job_id) and CHUNK_ID.match(chunk_id)):
        return "", chunk_id[:128]
    return job_id, chunk_id


def decode_body(raw: str) -> dict[str, Any]:
    """The ``body`` field as a JSON object, whatever the kind; MalformedMessage otherwise."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"body is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    return data


# --- kind ingest_chunk ----------------------------------------------------------------------


class ChunkBody(NamedTuple):
    """The body of an ``ingest_chunk`` entry, parsed, with the defaults filled in."""

    text: str
    source_uri: str
    source_type: str
    workspace: str
    metadata: dict[str, Any]


def chunk_body(
    text: str,
    source_uri: str,
    source_type: str,
    workspace: str,
    metadata: Mapping[str, Any] | None,
) -> bytes:
    """The body of an ``ingest_chunk`` entry: ``{text, source_uri, source_type, workspace,
    metadata}``, compact UTF-8, by pydantic-core's encoder: what ``json.dumps(...,
    ensure_ascii=False)`` writes (NaN/Infinity too), but for a float exponent's padding
    (``1e-7``, not ``1e-07``), at a fifth of the cost. It never holds a newline byte: JSON
    escapes control characters inside strings."""
    body = {
        "text": text,
        "source_uri": source_uri,
        "source_type": source_type,
        "workspace": workspace,
        "metadata": metadata if type(metadata) is dict else dict(metadata or {}),
    }
    return to_json(body, inf_nan_mode="constants")


def parse_chunk_body(raw: str, job_id: str, chunk_id: str) -> ChunkBody:
    """Read an ``ingest_chunk`` body; MalformedMessage names the first problem.

    ``text`` must be a non-blank string and ``metadata`` an object (or absent); a missing
    ``source_uri`` becomes ``shield://<job_id>/<chunk_id>``, ``source_type`` "text" and
    ``workspace`` "default".
    """
    data = decode_body(raw)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MalformedMessage("body.text is missing or empty")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise MalformedMessage("body.metadata is not an object")
    return ChunkBody(
        text=text,
        source_uri=str(data.get("source_uri") or f"shield://{job_id}/{chunk_id}"),
        source_type=str(data.get("source_type") or "text"),
        workspace=str(data.get("workspace") or "default"),
        metadata=dict(metadata),
    )


def chunk_document_id(job_id: str, chunk_id: str) -> str:
    """The id of the document an ``ingest_chunk`` entry makes in the in-process engines."""
    return f"shield-{job_id}-{chunk_id}"


# --- kind delete_document -------------------------------------------------------------------


class DeleteBody(NamedTuple):
    """The body of a ``delete_document`` entry, parsed, with the defaults filled in."""

    workspace: str
    doc_ids: tuple[str, ...]
    source_uri: str  # what the documents were (a file), for logs and the dead letter


def delete_body(workspace: str, doc_ids: Collection[str], source_uri: str) -> bytes:
    """The body of a ``delete_document`` entry: ``{workspace, doc_ids, source_uri}``, compact
    UTF-8 without a newline byte (as chunk_body)."""
    body = {"workspace": workspace, "doc_ids": list(doc_ids), "source_uri": source_uri}
    return to_json(body)


def parse_delete_body(raw: str) -> DeleteBody:
    """Read a ``delete_document`` body; MalformedMessage names the first problem (the field).

    ``doc_ids`` must be a list of 1 to MAX_DELETE_IDS distinct ids (non-empty strings without
    blanks or control characters); ``workspace`` defaults to "default" as in ``ingest_chunk``.
    """
    data = decode_body(raw)
    ids = data.get("doc_ids")
    if not isinstance(ids, list) or not ids:
        raise MalformedMessage("body.doc_ids is missing or not a non-empty list")
    if len(ids) > MAX_DELETE_IDS:
        raise MalformedMessage(f"body.doc_ids holds {len(ids)} ids (at most {MAX_DELETE_IDS})")
    for n, doc_id in enumerate(ids):
        if not isinstance(doc_id, str) or not DOC_ID.match(doc_id):
            raise MalformedMessage(f"body.doc_ids[{n}] is not a document id")
    if len(set(ids)) != len(ids):
        raise MalformedMessage("body.doc_ids holds an id twice")
    workspace = data.get("workspace")
    if workspace is not None and not isinstance(workspace, str):
        raise MalformedMessage("body.workspace is not a string")
    source_uri = data.get("source_uri")
    if source_uri is not None and not isinstance(source_uri, str):
        raise MalformedMessage("body.source_uri is not a string")
    return DeleteBody(workspace or "default", tuple(ids), source_uri or "")
