"""Deterministic, LLM-free extraction for the ``offline`` engine (pure functions, no LightRAG).

What LightRAG normally asks an LLM, answered from the text itself:

- entity extraction: keyphrases (RAKE-style: runs of non-stopwords, scored by word degree and
  frequency) become entities; two keyphrases in the same sentence become a co-occurrence
  relation. The answer is written in LightRAG's own delimiter format
  (``entity<|#|>name<|#|>type<|#|>description`` ... ``<|COMPLETE|>``), so LightRAG's real
  parser, merge step and storages do the rest.
- description summaries: the descriptions joined and truncated.
- query keywords: the query's keyphrases as LightRAG's keyword JSON.
- embeddings: a hashed bag of words and word bigrams (signed feature hashing, L2-normalised).

Everything here is labelled "offline extraction" where it surfaces; it is a stand-in for an LLM
in the sandbox and CI, not a substitute for one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TUPLE_DELIMITER = "<|#|>"  # lightrag.prompt PROMPTS["DEFAULT_TUPLE_DELIMITER"]
COMPLETION_DELIMITER = "<|COMPLETE|>"  # PROMPTS["DEFAULT_COMPLETION_DELIMITER"]
ENTITY_TYPE = "Concept"
RELATION_KEYWORDS = "co-occurrence"
_MAX_DESCRIPTION_CHARS = 240
_MAX_PHRASE_WORDS = 3

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "else",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "shall",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "one",
        "two",
        "three",
        "many",
        "much",
        "every",
        "via",
        "per",
        "using",
        "used",
        "use",
        "uses",
        "new",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-']*[A-Za-z0-9]|[A-Za-z]")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_INPUT_FENCE = re.compile(r"---Input Text---\s*```\n?(.*?)\n?```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Extraction:
    """Entities (name -> description) and relations ((source, target) -> description)."""

    entities: dict[str, str]
    relations: dict[tuple[str, str], str]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _title(phrase: list[str]) -> str:
    return " ".join(w if any(c.isupper() for c in w[1:]) else w[:1].upper() + w[1:] for w in phrase)


def _phrases(sentence: str) -> list[list[str]]:
    runs: list[list[str]] = []
    current: list[str] = []
    for word in _WORD.findall(sentence):
        if word.lower() in STOPWORDS or len(word) < 3:
            if current:
                runs.append(current)
            current = []
            continue
        current.append(word)
        if len(current) == _MAX_PHRASE_WORDS:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _clean(text: str) -> str:
    """One line, no LightRAG delimiter, bounded length."""
    flat = " ".join(
        text.replace(TUPLE_DELIMITER, " ").replace("<|", "(").replace("|>", ")").split()
    )
    return flat[:_MAX_DESCRIPTION_CHARS]


def extract(text: str, max_entities: int) -> Extraction:
    """Keyphrase entities and same-sentence co-occurrence relations of ``text``."""
    sents = sentences(text)
    per_sentence = [_phrases(s) for s in sents]
    freq: Counter[str] = Counter()
    degree: Counter[str] = Counter()
    for runs in per_sentence:
        for run in runs:
            for w in run:
                freq[w.lower()] += 1
                degree[w.lower()] += len(run) - 1
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for index, runs in enumerate(per_sentence):
        for run in runs:
            name = _title(run)
            score = sum((degree[w.lower()] + freq[w.lower()]) / freq[w.lower()] for w in run)
            scores[name] = max(scores.get(name, 0.0), score)
            first_seen.setdefault(name, index)
    ranked = sorted(scores, key=lambda n: (-scores[n], first_seen[n], n))[:max_entities]
    chosen = set(ranked)
    entities = {
        name: _clean(f"{name}: mentioned in the text: {sents[first_seen[name]]}") for name in ranked
    }
    relations: dict[tuple[str, str], str] = {}
    for index, runs in enumerate(per_sentence):
        names = sorted({_title(run) for run in runs} & chosen)
        for i, source in enumerate(names):
            for target in names[i + 1 :]:
                relations.setdefault(
                    (source, target),
                    _clean(f"{source} and {target} appear together: {sents[index]}"),
                )
    return Extraction(entities=entities, relations=relations)


def format_extraction(extraction: Extraction) -> str:
    """The extraction in LightRAG's delimiter format (what an LLM would answer)."""
    d = TUPLE_DELIMITER
    lines = [f"entity{d}{n}{d}{ENTITY_TYPE}{d}{desc}" for n, desc in extraction.entities.items()]
    lines += [
        f"relation{d}{s}{d}{t}{d}{RELATION_KEYWORDS}{d}{desc}"
        for (s, t), desc in extraction.relations.items()
    ]
    lines.append(COMPLETION_DELIMITER)
    return "\n".join(lines)


def input_text_of(prompt: str) -> str | None:
    """The chunk text inside LightRAG's extraction prompt, or None for other prompts."""
    match = _INPUT_FENCE.search(prompt)
    return match.group(1) if match else None


def answer(prompt: str, system_prompt: str | None, max_entities: int) -> str:
    """What the offline 'LLM' answers to one of LightRAG's prompts."""
    text = input_text_of(prompt)
    if text is not None:
        return format_extraction(extract(text, max_entities))
    whole = f"{system_prompt or ''}\n{prompt}"
    if "Description List:" in whole:
        listed = whole.split("Description List:", 1)[1].split("---Output---", 1)[0]
        return _clean(" ".join(line.strip('`{}" ') for line in listed.splitlines()))
    if "User Query:" in whole:
        query = whole.split("User Query:", 1)[1].split("---Output---", 1)[0].strip()
        names = list(extract(query, max_entities).entities)
        return json.dumps({"high_level_keywords": names[:3], "low_level_keywords": names})
    return "offline extraction (no LLM): no generated answer; use the retrieved context."


def hashed_embedding(texts: Sequence[str], dim: int) -> npt.NDArray[np.float32]:
    """Signed feature hashing of words and word bigrams, L2-normalised, one row per text."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        words = [w.lower() for w in _WORD.findall(text)]
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            out[row, value % dim] += 1.0 if value >> 63 else -1.0
        norm = math.sqrt(float(np.dot(out[row], out[row])))
        if norm > 0:
            out[row] /= norm
    return out


class ByteCodec:
    """A local tokenizer: UTF-8 bytes as tokens. Thread-safe (stateless); never downloads."""

    def encode(self, content: str) -> list[int]:
        return list(content.encode("utf-8"))

    def decode(self, tokens: list[int]) -> str:
        return bytes(tokens).decode("utf-8", errors="ignore")
