"""engines/offline_extract.py: the offline engine's deterministic 'LLM' (pure functions)."""

from __future__ import annotations

import json

import numpy as np
from shield_orchestrator.engines import offline_extract as ox

TEXT = (
    "Redis Streams deliver chunks to the worker pool. "
    "The worker pool calls LightRAG for each chunk."
)


def test_keyphrases_become_entities_and_same_sentence_pairs_relations() -> None:
    ex = ox.extract(TEXT, max_entities=10)
    assert "Redis Streams Deliver" in ex.entities
    assert "LightRAG" in ex.entities
    # every relation joins two chosen entities of one sentence, sorted, no self-loops
    for source, target in ex.relations:
        assert source in ex.entities
        assert target in ex.entities
        assert source < target
    assert ex.relations, "two keyphrases in one sentence make a relation"


def test_extraction_is_deterministic_and_bounded() -> None:
    assert ox.extract(TEXT, 3) == ox.extract(TEXT, 3)
    assert len(ox.extract(TEXT, 3).entities) == 3


def test_answer_speaks_lightrags_delimiter_format() -> None:
    prompt = f"---Task---\n---Input Text---\n```\n{TEXT}\n```\n\n---Output---\n"
    lines = ox.answer(prompt, None, 10).splitlines()
    assert lines[-1] == ox.COMPLETION_DELIMITER
    for line in lines[:-1]:
        kind, *parts = line.split(ox.TUPLE_DELIMITER)
        assert (kind, len(parts)) in {("entity", 3), ("relation", 4)}
        assert "\n" not in line


def test_answer_to_a_keyword_prompt_is_keyword_json() -> None:
    out = json.loads(ox.answer("---Real Data---\nUser Query: What calls LightRAG?\n", None, 5))
    assert set(out) == {"high_level_keywords", "low_level_keywords"}
    assert any("LightRAG" in k for k in out["low_level_keywords"])


def test_descriptions_never_carry_the_delimiter() -> None:
    text = f"Alpha Beta{ox.TUPLE_DELIMITER}Gamma Delta are <|odd|> names."
    for desc in ox.extract(text, 5).entities.values():
        assert ox.TUPLE_DELIMITER not in desc
        assert "<|" not in desc


def test_hashed_embedding_is_unit_length_and_similar_for_similar_text() -> None:
    vecs = ox.hashed_embedding([TEXT, TEXT + " again", "completely unrelated words here"], 64)
    assert vecs.shape == (3, 64)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2])


def test_byte_codec_round_trips_unicode() -> None:
    codec = ox.ByteCodec()
    assert codec.decode(codec.encode("Grüße, 東京")) == "Grüße, 東京"
