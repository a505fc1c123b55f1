"""The code-aware chunker (indexing/chunker.py) on real tree-sitter grammars, per language.

What it must keep true for LightRAG's extraction cache: one chunk per top-level function or
class, led by a context line with the path and the qualified symbol; editing one function
changes that chunk's text only; the same code in two files gives different chunks.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from shield_orchestrator.indexing.chunker import (
    CodeChunk,
    approx_tokens,
    chunk_code,
    module_name,
)


@dataclass(frozen=True)
class Case:
    path: str
    source: str
    symbols: list[tuple[str, str]]  # (kind, qualified symbol), in order
    edit: tuple[str, str]  # old -> new text, inside the function named by `edited`
    edited: str
    max_tokens: int = 1200


CASES = {
    "python": Case(
        path="pkg/mod.py",
        source='''import os

CONSTANT = 1


# Adds one.
def alpha(x):
    return x + 1


def beta(y):
    return y * 2


class Store:
    """Keeps things."""

    def get(self, key):
        return os.environ.get(key)
''',
        symbols=[
            ("module", "pkg.mod"),
            ("function", "pkg.mod.alpha"),
            ("function", "pkg.mod.beta"),
            ("class", "pkg.mod.Store"),
        ],
        edit=("return x + 1", "return x + 100"),
        edited="pkg.mod.alpha",
    ),
    "javascript": Case(
        path="web/src/util.js",
        source="""import { a } from "./a.js";

/** Adds one. */
export function alpha(x) {
  return x + 1;
}

const beta = (y) => {
  return y * 2;
};

export class Store {
  get(key) {
    return a[key];
  }
}
""",
        symbols=[
            ("module", "web.src.util"),
            ("function", "web.src.util.alpha"),
            ("function", "web.src.util.beta"),
            ("class", "web.src.util.Store"),
        ],
        edit=("return y * 2", "return y * 3"),
        edited="web.src.util.beta",
    ),
    "typescript": Case(
        path="web/src/store.ts",
        source="""import type { Key } from "./key";

export interface Item {
  key: Key;
}

export function alpha(x: number): number {
  return x + 1;
}

export default class Store<T> {
  private items: T[] = [];
  get(i: number): T {
    return this.items[i];
  }
}

namespace Util {
  export function beta(y: number): number {
    return y * 2;
  }
}
""",
        symbols=[
            ("module", "web.src.store"),
            ("interface", "web.src.store.Item"),
            ("function", "web.src.store.alpha"),
            ("class", "web.src.store.Store"),
            ("function", "web.src.store.Util.beta"),
        ],
        edit=("return this.items[i];", "return this.items[i + 1];"),
        edited="web.src.store.Store",
    ),
    "tsx": Case(
        path="web/src/App.tsx",
        source="""import React from "react";

export function App(): JSX.Element {
  return <div className="app">hello</div>;
}

export const Footer = () => <footer>bye</footer>;
""",
        symbols=[
            ("module", "web.src.App"),
            ("function", "web.src.App.App"),
            ("function", "web.src.App.Footer"),
        ],
        edit=("hello", "hello again"),
        edited="web.src.App.App",
    ),
    "go": Case(
        path="internal/store/store.go",
        source="""package store

import "fmt"

// Alpha adds one.
func Alpha(x int) int {
	return x + 1
}

func Beta(y int) int {
	return y * 2
}

type Store struct {
	items map[string]int
}

func (s *Store) Get(k string) int {
	fmt.Println(k)
	return s.items[k]
}
""",
        symbols=[
            ("module", "internal.store.store"),
            ("function", "internal.store.store.Alpha"),
            ("function", "internal.store.store.Beta"),
            ("type", "internal.store.store.Store"),
            ("method", "internal.store.store.Store.Get"),
        ],
        edit=("fmt.Println(k)", "fmt.Println(k, len(s.items))"),
        edited="internal.store.store.Store.Get",
    ),
    "rust": Case(
        path="src/store.rs",
        source="""use std::collections::HashMap;

/// Adds one.
pub fn alpha(x: i32) -> i32 {
    x + 1
}

fn beta(y: i32) -> i32 {
    y * 2
}

#[derive(Debug, Default)]
pub struct Store {
    items: HashMap<String, i32>,
}

impl Store {
    pub fn get(&self, k: &str) -> Option<&i32> {
        self.items.get(k)
    }
}
""",
        symbols=[
            ("module", "src.store"),
            ("function", "src.store.alpha"),
            ("function", "src.store.beta"),
            ("type", "src.store.Store"),
            ("impl", "src.store.Store"),
        ],
        edit=("y * 2", "y * 4"),
        edited="src.store.beta",
    ),
    "java": Case(
        path="src/main/java/com/acme/Store.java",
        source="""package com.acme;

import java.util.HashMap;
import java.util.Map;

/** Keeps things. */
public class Store {
    private final Map<String, Integer> items = new HashMap<>();

    public Store() {
        items.put("zero", 0);
    }

    public int alpha(int x) {
        return x + 1;
    }

    public int beta(int y) {
        return y * 2;
    }
}

interface Keyed {
    String key();
}
""",
        # The class does not fit 60 tokens: its methods become chunks of their own.
        symbols=[
            ("module", "src.main.java.com.acme.Store"),
            ("class", "src.main.java.com.acme.Store.Store"),
            ("constructor", "src.main.java.com.acme.Store.Store.Store"),
            ("method", "src.main.java.com.acme.Store.Store.alpha"),
            ("method", "src.main.java.com.acme.Store.Store.beta"),
            ("interface", "src.main.java.com.acme.Store.Keyed"),
        ],
        edit=("return x + 1;", "return x + 2;"),
        edited="src.main.java.com.acme.Store.Store.alpha",
        max_tokens=60,
    ),
    "c": Case(
        path="lib/store.c",
        source="""#include <stdio.h>
#include "store.h"

struct store {
    int items[16];
};

/* Adds one. */
static int alpha(int x)
{
    return x + 1;
}

int *beta(struct store *s)
{
    return s->items;
}
""",
        symbols=[
            ("module", "lib.store"),
            ("type", "lib.store.store"),
            ("function", "lib.store.alpha"),
            ("function", "lib.store.beta"),
        ],
        edit=("return s->items;", "return &s->items[1];"),
        edited="lib.store.beta",
    ),
    "cpp": Case(
        path="src/store.cpp",
        source="""#include <map>
#include <string>

namespace acme {

class Store {
 public:
  int get(const std::string& k) const { return items_.at(k); }

 private:
  std::map<std::string, int> items_;
};

int alpha(int x) {
  return x + 1;
}

template <typename T>
T beta(T y) {
  return y * 2;
}

}  // namespace acme
""",
        symbols=[
            ("module", "src.store"),
            ("class", "src.store.acme.Store"),
            ("function", "src.store.acme.alpha"),
            ("function", "src.store.acme.beta"),
        ],
        edit=("return x + 1;", "return x - 1;"),
        edited="src.store.acme.alpha",
    ),
}
LANGUAGES = sorted(CASES)


def chunks_of(case: Case, source: str | None = None) -> list[CodeChunk]:
    chunks = chunk_code(
        case.path, case.source if source is None else source, max_tokens=case.max_tokens
    )
    assert chunks is not None
    return chunks


@pytest.mark.parametrize("language", LANGUAGES)
def test_functions_and_classes_become_chunks_with_a_qualified_context_line(
    language: str,
) -> None:
    case = CASES[language]
    chunks = chunks_of(case)
    assert [(c.kind, c.symbol) for c in chunks] == case.symbols
    comment = "#" if language == "python" else "//"
    for chunk in chunks:
        assert chunk.text.splitlines()[0] == f"{comment} {case.path} | {chunk.kind} {chunk.symbol}"
        assert chunk.text.endswith("\n")
        assert 1 <= chunk.start_line <= chunk.end_line <= case.source.count("\n")
        assert approx_tokens(chunk.text) <= case.max_tokens


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_source_line_is_in_exactly_one_chunk(language: str) -> None:
    """Nothing is lost, nothing doubled: the chunks' code lines are the file's lines."""
    case = CASES[language]
    code_lines = [line for c in chunks_of(case) for line in c.text.splitlines()[1:] if line.strip()]
    source_lines = [line for line in case.source.splitlines() if line.strip()]
    assert sorted(code_lines) == sorted(source_lines)


@pytest.mark.parametrize("language", LANGUAGES)
def test_editing_one_function_changes_only_its_chunk(language: str) -> None:
    case = CASES[language]
    old, new = case.edit
    assert case.source.count(old) == 1
    before = chunks_of(case)
    after = chunks_of(case, case.source.replace(old, new))
    assert [c.symbol for c in after] == [c.symbol for c in before]
    changed = [b.symbol for b, a in zip(before, after, strict=True) if b.text != a.text]
    assert changed == [case.edited]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_function_added_above_leaves_the_others_byte_identical(language: str) -> None:
    """No line numbers in the text: code that only moved gives the same chunk."""
    case = CASES[language]
    before = {c.symbol: c.text for c in chunks_of(case)}
    first_symbol_line = chunks_of(case)[1].start_line
    lines = case.source.splitlines(keepends=True)
    filler = {
        "python": "def added():\n    return 0\n\n\n",
        "go": "func Added() int {\n\treturn 0\n}\n\n",
        "rust": "fn added() -> i32 {\n    0\n}\n\n",
        "java": "interface Added {\n}\n\n",
        "c": "static int added(void)\n{\n    return 0;\n}\n\n",
        "cpp": "int added() {\n  return 0;\n}\n\n",
    }.get(language, "function added() {\n  return 0;\n}\n\n")
    if language == "java":  # top-level in Java: a type, before the class and its comment
        first_symbol_line -= 1
    moved = (
        "".join(lines[: first_symbol_line - 1]) + filler + "".join(lines[first_symbol_line - 1 :])
    )
    after = {c.symbol: c.text for c in chunks_of(case, moved)}
    added = set(after) - set(before)
    assert len(added) == 1
    assert {s: t for s, t in after.items() if s not in added} == before


def test_the_same_code_in_two_files_gives_different_chunks() -> None:
    source = "def helper(x):\n    return x\n"
    one = chunk_code("a/util.py", source)
    two = chunk_code("b/util.py", source)
    assert one is not None
    assert two is not None
    assert [c.symbol for c in one] == ["a.util.helper"]
    assert [c.symbol for c in two] == ["b.util.helper"]
    assert one[0].text != two[0].text
    assert one[0].text.split("\n", 1)[1] == two[0].text.split("\n", 1)[1]


def test_packages_are_named_after_their_directory() -> None:
    a = chunk_code("a/__init__.py", "class Config:\n    pass\n")
    b = chunk_code("b/__init__.py", "class Config:\n    pass\n")
    assert a is not None
    assert b is not None
    assert [c.symbol for c in a] == ["a.Config"]
    assert [c.symbol for c in b] == ["b.Config"]
    assert module_name("__init__.py") == "__init__"
    assert module_name("setup.py") == "setup"
    assert module_name("src/a.b/c.test.ts") == "src.a.b.c.test"


@pytest.mark.parametrize(
    "path", ["README.md", "docs/guide.rst", "notes.txt", "Makefile", "data/x.json", "a.yaml"]
)
def test_prose_and_unknown_languages_fall_back(path: str) -> None:
    assert chunk_code(path, "# Title\n\nSome words.\n") is None


def test_empty_files_and_a_too_small_budget() -> None:
    assert chunk_code("a.py", "") == []
    assert chunk_code("a.py", "\n\n  \n") == []
    with pytest.raises(ValueError, match="max_tokens has value 8"):
        chunk_code("a.py", "x = 1\n", max_tokens=8)


def test_a_large_python_class_is_split_into_methods() -> None:
    methods = "".join(
        f"    def m{i}(self, value):\n        return value + {i}\n\n" for i in range(12)
    )
    source = f'class Big:\n    """Doc."""\n\n    limit = 3\n\n{methods}'
    chunks = chunk_code("svc/big.py", source, max_tokens=100)
    assert chunks is not None
    assert [c.symbol for c in chunks] == ["svc.big.Big"] + [f"svc.big.Big.m{i}" for i in range(12)]
    assert (
        chunks[0].text
        == '# svc/big.py | class svc.big.Big\nclass Big:\n    """Doc."""\n    limit = 3\n'
    )
    assert chunks[3].text == (
        "# svc/big.py | method svc.big.Big.m2\n    def m2(self, value):\n        return value + 2\n"
    )
    # The same class under a roomy budget is one chunk.
    roomy = chunk_code("svc/big.py", source)
    assert roomy is not None
    assert [c.symbol for c in roomy] == ["svc.big.Big"]


def test_an_over_long_function_is_split_at_line_boundaries() -> None:
    body = "".join(f"    total += {i}\n" for i in range(400))
    source = f"def long():\n    total = 0\n{body}    return total\n"

    def by_bytes(text: str) -> int:
        return len(text.encode())

    chunks = chunk_code("calc.py", source, max_tokens=500, count_tokens=by_bytes)
    assert chunks is not None
    assert len(chunks) > 5
    for number, chunk in enumerate(chunks, start=1):
        assert chunk.symbol == "calc.long"
        assert chunk.text.startswith(f"# calc.py | function calc.long | part {number}\n")
        assert by_bytes(chunk.text) <= 500
    code = "".join(c.text.split("\n", 1)[1] for c in chunks)
    assert code == source
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == source.count("\n")


def test_a_single_line_longer_than_the_budget_is_cut() -> None:
    source = "const DATA = [" + ", ".join(str(i) for i in range(3000)) + "];\n"
    chunks = chunk_code("data.js", source, max_tokens=200)
    assert chunks is not None
    assert all(approx_tokens(c.text) <= 200 for c in chunks)
    assert "".join(c.text.split("\n", 1)[1].rstrip("\n") for c in chunks) == source.rstrip("\n")


def test_a_syntax_error_still_yields_the_functions_around_it() -> None:
    source = (
        "def good():\n    return 1\n\n\ndef broken(:\n    pass\n\n\ndef after():\n    return 2\n"
    )
    chunks = chunk_code("x.py", source)
    assert chunks is not None
    symbols = [c.symbol for c in chunks]
    assert "x.good" in symbols
    assert "x.after" in symbols
    assert "".join(c.text.split("\n", 1)[1] for c in chunks).count("return") == 2


def test_importing_the_package_needs_no_tree_sitter(rendered_root: Path) -> None:
    """Deployed hosts import every module (validate.yml) and have no tree-sitter until
    indexing is wired: the grammars are imported on the first parse only."""
    code = (
        "import sys, shield_orchestrator.indexing.chunker, shield_orchestrator.indexing.mirror; "
        "print(sorted(m for m in sys.modules if m.startswith('tree_sitter')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=rendered_root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


LARGE_CONTAINERS = {
    "rust": (
        "src/big.rs",
        "pub struct Big;\n\nimpl Big {\n"
        + "".join(f"    pub fn m{i}(&self) -> i32 {{\n        {i}\n    }}\n\n" for i in range(8))
        + "}\n",
        ["src.big.Big", "src.big.Big"] + [f"src.big.Big.m{i}" for i in range(8)],
    ),
    "typescript": (
        "src/big.ts",
        "export class Big {\n  private n = 0;\n"
        + "".join(f"  m{i}(): number {{\n    return {i};\n  }}\n" for i in range(8))
        + "}\n",
        ["src.big.Big"] + [f"src.big.Big.m{i}" for i in range(8)],
    ),
    "cpp": (
        "src/big.hpp",
        "class Big {\n public:\n"
        + "".join(f"  int m{i}() const {{\n    return {i};\n  }}\n" for i in range(8))
        + "};\n",
        ["src.big.Big"] + [f"src.big.Big.m{i}" for i in range(8)],
    ),
}


@pytest.mark.parametrize("language", sorted(LARGE_CONTAINERS))
def test_large_classes_and_impls_are_split_into_methods(language: str) -> None:
    path, source, symbols = LARGE_CONTAINERS[language]
    chunks = chunk_code(path, source, max_tokens=60)
    assert chunks is not None
    assert [c.symbol for c in chunks] == symbols
    assert all(approx_tokens(c.text) <= 60 for c in chunks)
    whole = chunk_code(path, source)
    assert whole is not None
    assert len(whole) == len(symbols) - 8  # under the default budget: one chunk per class


def test_a_very_long_context_line_does_not_shred_the_code() -> None:
    path = "/".join(["deep"] * 40) + "/m.py"
    chunks = chunk_code(path, "def f():\n    return 1\n", max_tokens=32)
    assert chunks is not None
    assert [c.text.split("\n", 1)[1] for c in chunks] == ["def f():\n    return 1\n"]


def test_budget_holds_past_a_thousand_parts() -> None:
    """The reserve for ``| part N`` and for the newline after a cut piece, byte-exact."""
    source = "BLOB = '" + "a" * 300_000 + "'\n"

    def by_bytes(text: str) -> int:
        return len(text.encode())

    chunks = chunk_code("big.py", source, max_tokens=200, count_tokens=by_bytes)
    assert chunks is not None
    assert len(chunks) > 1000
    assert max(by_bytes(c.text) for c in chunks) <= 200
    assert chunks[-1].text.startswith(f"# big.py | module big | part {len(chunks)}\n")
