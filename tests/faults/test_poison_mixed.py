"""Fault 5: poison and malformed messages mixed into good ones (short ~1,000; long 10,000).

Two worker processes consume a stream where bad entries of every kind sit at seeded random
places among good chunks: wrong envelope version, unknown kind, body not JSON, empty text,
a chunk the engine refuses for good, one that fails every retry, one that crashes the
handler, an entry without job id, and one of a job nobody created. Afterwards:

- each bad entry is in the dead-letter stream exactly once (matched by its stream id), with
  a reason that names its problem; nothing else is dead-lettered;
- every good chunk ran once and was counted; the jobs end completed / completed_with_errors
  with counts equal to what was submitted; the stream and the group are empty.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from shield_orchestrator import keys

from tests.faults.support import (
    RECORDER_STARTED,
    SEED,
    WORKER_ENV,
    all_terminal,
    dead_letters,
    job_fields,
    pg_counts,
    recorded,
    scale,
    stream_state,
)
from tests.support.chunks import chunk_id, chunk_ids, enqueue_job
from tests.support.pools import wait_for
from tests.support.procs import Fleet

pytestmark = pytest.mark.acceptance

GOOD = scale(1000, 10000)
REPEAT = scale(3, 30)  # of each bad kind
RETRIES = int(WORKER_ENV["SHIELD_WORKER_RETRY_ATTEMPTS"])


def _as_produced(fields: dict[str, str]) -> dict[str, str]:
    return fields


# bad kinds inside the mixed job (their ids are readable: the job counts them failed):
# name -> (how to spoil a good entry, words the dead-letter reason must contain)
IN_JOB = {
    "version": (lambda f: {**f, "v": "9"}, "version"),
    "kind": (lambda f: {**f, "kind": "reindex_repository"}, "kind"),
    "not_json": (lambda f: {**f, "body": "{not json"}, "json"),
    "empty_text": (lambda f: {**f, "body": _body(f, text="")}, "text"),
    "permanent": (_as_produced, "permanent"),
    "always": (_as_produced, "failure requested"),
    "crash": (_as_produced, "crash requested"),
}
# the engine's refusals: written by the producer, as chunk metadata
ENGINE_META = {name: {"noop_fail": name} for name in ("permanent", "always", "crash")}
# bad entries that belong to no job we made: dead-lettered, counted nowhere
STRAY = {
    "no_job_id": (lambda f: {k: v for k, v in f.items() if k != "job_id"}, "job_id"),
    "unknown_job": (lambda f: {**f, "job_id": str(uuid.uuid4())}, "unknown job"),
}


def _body(fields: dict[str, str], **changes: Any) -> str:
    return json.dumps({**json.loads(fields["body"]), **changes})


async def test_bad_entries_dead_lettered_once_with_reason_good_ones_processed(
    sut: Any, recorder: Any, pg_pool: Any, workers: Fleet
) -> None:
    rng = random.Random(SEED)
    good_n = GOOD // 2
    mixed_good = GOOD - good_n
    names = [name for name in IN_JOB for _ in range(REPEAT)]  # the mixed job's bad chunks
    mixed_bad = len(names)

    def mixed_meta(n: int) -> dict[str, str]:  # the engine's refusals travel as metadata
        return ENGINE_META.get(names[n - mixed_good - 1], {}) if n > mixed_good else {}

    # Both jobs come from the API's producer. Before any worker reads, their entries are laid
    # out again in a seeded shuffle: the mixed job's bad ones spoiled, strays added.
    good_job = await enqueue_job(sut, pg_pool, good_n)
    mixed_job = await enqueue_job(sut, pg_pool, mixed_good + mixed_bad, mixed_meta)
    totals = {good_job: good_n, mixed_job: mixed_good + mixed_bad}
    produced = [
        fields for _id, fields in await sut.xrange(keys.ingestion_stream(keys.WORKSPACES[0]))
    ]
    good_fields = [f for f in produced if f["job_id"] == good_job]
    mixed_fields = [f for f in produced if f["job_id"] == mixed_job]
    entries: list[tuple[str, dict[str, str]]] = []  # (bad kind or "", fields)
    entries += [("", f) for f in good_fields + mixed_fields[:mixed_good]]
    for name, fields in zip(names, mixed_fields[mixed_good:], strict=True):
        entries.append((name, IN_JOB[name][0](fields)))
    for name, (spoil, _) in STRAY.items():
        for k in range(REPEAT):
            entries.append((name, spoil({**good_fields[0], "chunk_id": chunk_id(900_000 + k)})))
    rng.shuffle(entries)

    async with sut.pipeline(transaction=True) as pipe:
        pipe.delete(keys.ingestion_stream(keys.WORKSPACES[0]))
        for _, fields in entries:
            pipe.xadd(keys.ingestion_stream(keys.WORKSPACES[0]), fields)
        ids = (await pipe.execute())[1:]
    bad = {entry_id: name for entry_id, (name, _) in zip(ids, entries, strict=True) if name}

    for instance in ("1", "2"):
        workers.spawn(instance)
    await wait_for(lambda: all_terminal(sut, totals), 180, "both jobs terminal")
    await wait_for(lambda: _drained(sut), 60, "stream and group empty")

    letters = await dead_letters(sut)
    by_id: dict[str, list[dict[str, str]]] = {}
    for letter in letters:
        by_id.setdefault(letter.get("stream_id", ""), []).append(letter)
    assert set(by_id) == set(bad), "dead letters must be exactly the bad entries"
    reasons = {**{k: w for k, (_, w) in IN_JOB.items()}, **{k: w for k, (_, w) in STRAY.items()}}
    for entry_id, name in bad.items():
        assert len(by_id[entry_id]) == 1, f"{name} dead-lettered {len(by_id[entry_id])} times"
        assert reasons[name] in by_id[entry_id][0]["error"].lower(), (name, by_id[entry_id])

    g = await job_fields(sut, good_job)
    assert (g["status"], g["chunks_processed"], g["chunks_failed"]) == (
        "completed", str(good_n), "0")  # fmt: skip
    m = await job_fields(sut, mixed_job)
    assert (m["status"], m["chunks_processed"], m["chunks_failed"]) == (
        "completed_with_errors", str(mixed_good), str(mixed_bad))  # fmt: skip

    started = await recorded(recorder, RECORDER_STARTED)
    good_keys = {f"{good_job}:{c}" for c in chunk_ids(good_n)}
    good_keys |= {f"{mixed_job}:{c}" for c in chunk_ids(mixed_good)}
    assert {k: started.get(k) for k in good_keys} == dict.fromkeys(good_keys, 1)
    always = [f"{mixed_job}:{f['chunk_id']}" for n, f in entries if n == "always"]
    assert {started[k] for k in always} == {RETRIES + 1}  # retried, then dead-lettered

    async def pg_caught_up() -> bool:
        rows = await pg_counts(pg_pool, totals)
        return rows.get(good_job) == ("completed", good_n, 0) and rows.get(mixed_job) == (
            "completed_with_errors", mixed_good, mixed_bad)  # fmt: skip

    await wait_for(pg_caught_up, 60, "PostgreSQL rows equal the counts")


async def _drained(redis: Any) -> bool:
    return await stream_state(redis) == (0, 0)
