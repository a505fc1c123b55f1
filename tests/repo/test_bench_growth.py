"""bench/bench_growth.py's corpus makes the graph grow, and its tables never invent a tenth.

- The chunks are deterministic, unique, ~550-1,300 characters, and the offline engine's own
  extraction finds entities never seen before in every chunk (4 written, at least 3 used) and
  relations that keep increasing, so the graph grows over the whole run (a corpus that repeats
  its entities would flatter the curve).
- A run stopped before its end shows the tenths it did not reach as not measured (None), and
  the rates are the counted chunks over the measured time between two marks.
"""

from __future__ import annotations

from pathlib import Path

from shield_orchestrator.engines import offline_extract

from bench import bench_growth as bg


def test_corpus_is_deterministic_unique_and_sized() -> None:
    texts = [bg.text(i) for i in range(0, 50_000, 250)]
    assert texts == [bg.text(i) for i in range(0, 50_000, 250)]
    assert len(set(texts)) == len(texts)
    assert all(550 <= len(t) <= 1300 for t in texts), sorted(len(t) for t in texts)[::50]


def test_entities_and_relations_keep_increasing() -> None:
    entities: set[str] = set()
    relations: set[tuple[str, str]] = set()
    grown = []
    for i in range(300):
        found = offline_extract.extract(bg.text(i), max_entities=12)
        new = set(found.entities) - entities
        assert len(new) >= 3, (i, sorted(found.entities))  # 4 written; rarely one unused
        if i:
            assert set(found.entities) & entities, i  # and it links to the graph so far
        entities |= set(found.entities)
        before = len(relations)
        relations |= set(found.relations)
        grown.append(len(relations) - before)
    assert len(entities) >= 3.9 * 300
    assert min(grown[100:]) > 0


def test_tenths_not_reached_are_not_measured() -> None:
    run = bg.Run("x", 100)
    run.marks = [bg.Mark(0.0, 1, 0.0), bg.Mark(2.0, 10, 1.0), bg.Mark(5.0, 20, 4.0)]
    rows = run.tenth_rows()
    assert rows[0] == (9 / 2.0, 1.0 / 9)
    assert rows[1] == (10 / 3.0, 3.0 / 10)
    assert rows[2:] == [None] * 8
    assert run.rate_upto(15) == 19 / 5.0
    assert run.rate_upto(50) is None


def test_a_run_ends_completed_failed_over_budget_or_stalled() -> None:
    run, log = bg.Run("x", 100), Path("worker.log")
    run.done = 40
    assert bg._stop_reason(run, 0, 10.0, 1e9, 1.0, log) == ""
    assert bg._stop_reason(run, 0, 10.0, 1e9, bg.STALL_S + 1, log).startswith("STALLED")
    assert bg._stop_reason(run, 0, 11.0, 10.0, 1.0, log).startswith("stopped after")
    assert bg._stop_reason(run, 2, 10.0, 1e9, 1.0, log).startswith("2 chunks failed")
    run.done = 100
    assert bg._stop_reason(run, 0, 10.0, 1e9, 1.0, log) == "completed"
