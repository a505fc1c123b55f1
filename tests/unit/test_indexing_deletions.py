"""The indexer's deletion entries (indexing/activities.deletion_entries): one
``delete_document`` entry per file, split at MAX_DELETE_IDS, none for a file without
documents; each entry knows its file (a failed entry leaves that file's row pending)."""

from __future__ import annotations

from shield_orchestrator.indexing.activities import deletion_entries
from shield_orchestrator.indexing.runs import Deletion
from shield_orchestrator.services.messages import MAX_DELETE_IDS, parse_delete_body


def test_one_entry_per_file_split_at_the_limit() -> None:
    big = tuple(f"shield-j-c{n:06d}" for n in range(1, 2 * MAX_DELETE_IDS + 2))
    deletions = [
        Deletion("a.py", "sha-a", ("shield-a-c000001", "shield-a-c000002")),
        Deletion("empty.txt", "sha-e", ()),  # made no document: nothing to send
        Deletion("big.md", "sha-b", big),
    ]
    entries, owner = deletion_entries("r1", deletions)
    assert owner == [0, 2, 2, 2]
    assert [len(e.doc_ids) for e in entries] == [2, MAX_DELETE_IDS, MAX_DELETE_IDS, 1]
    assert tuple(i for e in entries[1:] for i in e.doc_ids) == big
    assert [e.source_uri for e in entries] == ["repo:r1/a.py"] + ["repo:r1/big.md"] * 3
    assert all(e.chunk_id is None for e in entries)  # numbered c000001... by the registry


def test_every_entry_is_a_valid_body() -> None:
    from shield_orchestrator.services.messages import delete_body

    ids = tuple(f"shield-j-c{n:06d}" for n in range(1, MAX_DELETE_IDS + 2))
    entries, _ = deletion_entries("r", [Deletion("x", "s", ids)])
    for e in entries:
        body = parse_delete_body(delete_body("ws", e.doc_ids, e.source_uri).decode())
        assert body.doc_ids == tuple(e.doc_ids)
