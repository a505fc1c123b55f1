"""Code-aware chunks: one per top-level function or class, each led by a context line.

    chunk_code("pkg/mod.py", text) -> [CodeChunk] | None (None: prose or unknown language,
                                       the caller falls back to LightRAG's token chunker)

A chunk is ``<comment> <path> | <kind> <qualified symbol>`` then the symbol's source lines,
e.g. ``# pkg/mod.py | method pkg.mod.Store.get``. The qualified name comes from the path
(``pkg/mod.py`` -> ``pkg.mod``; a package's ``__init__.py`` is the package), namespaces and
enclosing classes. So:

- the same function text in two files gives two different chunks (the path differs);
- an unchanged function of an edited file gives a byte-identical chunk (no line numbers and
  no commit in the text): LightRAG's extraction cache, keyed by the prompt text, hits, and
  re-indexing an edited file costs LLM calls for its changed functions only.

What is not inside a symbol (imports, constants, top-level statements, ``#ifdef`` lines)
forms one ``module`` chunk, first. Comments directly above a symbol belong to it. A class
(or Rust impl/trait) that does not fit the budget is split: each method or nested class
becomes its own chunk (``Class.method``) and the class keeps the rest (header, fields).
Anything still over the budget is split at line boundaries into ``| part N`` chunks (a
single line longer than the budget is cut). The budget is ``max_tokens`` as counted by
``count_tokens`` (default: about 4 bytes a token; pass the engine tokenizer's count, or
``len(s.encode())`` for a byte budget). Languages: see :mod:`.languages`.

tree-sitter and tree-sitter-language-pack (0.13.0: the grammars are in the wheel) are
imported on the first parse, so importing this module needs neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shield_orchestrator.indexing.languages import GO, LanguageSpec, language_for

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

DEFAULT_MAX_TOKENS = 1200  # LightRAG's default chunk_token_size
MIN_MAX_TOKENS = 32  # room for the context line and some code
# A JS/TS variable declaration is a symbol when its value is one of these.
_FUNCTION_VALUES = {
    "arrow_function": "function",
    "function_expression": "function",
    "function": "function",
    "generator_function": "function",
    "class": "class",
}
_DECLARATOR_NAMES = frozenset(
    {
        "identifier",
        "field_identifier",
        "type_identifier",
        "qualified_identifier",
        "operator_name",
        "destructor_name",
    }
)

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """About 4 bytes of code a token: a stand-in until the engine's tokenizer is passed."""
    return (len(text.encode("utf-8")) + 3) // 4


@dataclass(frozen=True, slots=True)
class CodeChunk:
    symbol: str  # qualified: pkg.mod.Class.method (the module's name for module code)
    kind: str  # module, function, class, method, ... (LanguageSpec kinds)
    text: str  # the context line, then the source lines
    start_line: int  # 1-based, first source line (for citations; not in the text)
    end_line: int


@dataclass(slots=True)
class _Segment:
    symbol: str
    kind: str
    first: int  # rows, 0-based, inclusive
    last: int
    holes: list[tuple[int, int]] = field(default_factory=list)  # rows of member chunks

    def rows(self, lines: list[str]) -> list[int]:
        """Its rows less its members'; with members gone, blank lines only separated them."""
        return [
            r
            for r in range(self.first, self.last + 1)
            if not any(a <= r <= b for a, b in self.holes) and (not self.holes or lines[r].strip())
        ]


_parsers = threading.local()  # a tree-sitter Parser is not shared between threads


def _parser(spec: LanguageSpec) -> Parser:
    cache: dict[str, Parser] = _parsers.__dict__.setdefault("by_grammar", {})
    if spec.grammar not in cache:
        # Imported here: the module imports without tree-sitter (deployed hosts have it only
        # once indexing is wired and the pins move to requirements/app.in).
        from tree_sitter_language_pack import get_parser

        cache[spec.grammar] = get_parser(spec.grammar)
    return cache[spec.grammar]


def module_name(path: str) -> str:
    """``pkg/sub/mod.py`` -> ``pkg.sub.mod``; ``pkg/__init__.py`` -> ``pkg``."""
    head, _, name = path.rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if dot > 0 else name
    parts = [p for p in head.split("/") if p]
    if stem != "__init__" or not parts:
        parts.append(stem)
    return ".".join(parts)


def _split_lines(text: str) -> list[str]:
    """Lines as tree-sitter counts rows (on ``\\n`` only), each with its newline."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _text(node: Node | None) -> str | None:
    if node is None or node.text is None:
        return None
    return node.text.decode("utf-8", "replace").replace("::", ".")


def _last_row(node: Node) -> int:
    end = node.end_point
    return max(node.start_point.row, end.row if end.column > 0 else end.row - 1)


class _Walker:
    """Collects the symbol segments of one parsed file."""

    def __init__(self, spec: LanguageSpec, fits: Callable[[_Segment], bool]) -> None:
        self.spec = spec
        self.fits = fits  # whether a segment fits one chunk (context line included)
        self.segments: list[_Segment] = []

    def collect(
        self, body: Node, qualifier: str, kinds: Mapping[str, str], header_row: int = -1
    ) -> list[_Segment]:
        """Segments of ``body``'s children (rows after ``header_row``); returns this level's."""
        spec = self.spec
        level: list[_Segment] = []
        attached: tuple[int, int] | None = None  # rows of adjacent comments above
        for child in body.named_children:
            first, last = child.start_point.row, _last_row(child)
            if child.type in spec.attached:
                keep = attached is not None and first <= attached[1] + 1
                attached = (attached[0] if keep and attached else first, last)
                continue
            start = attached[0] if attached and attached[1] + 1 >= first else first
            attached = None
            if child.type in spec.transparent:  # extern "C" has a body, #ifdef has not
                block = child.child_by_field_name("body") or child
                level += self.collect(block, qualifier, kinds, header_row)
                continue
            inner = self._unwrap(child)
            if inner.type in spec.namespaces:
                ns_name = _text(inner.child_by_field_name("name"))
                ns_body = inner.child_by_field_name("body")
                if ns_name and ns_body is not None:
                    level += self.collect(ns_body, f"{qualifier}.{ns_name}", kinds, header_row)
                continue
            found = self._identify(inner, kinds)
            if found is None or first <= header_row:
                continue  # not a symbol: module code (or the container's own text)
            if level and first <= level[-1].last:  # on the previous symbol's last line
                level[-1].last = max(level[-1].last, last)
                continue
            if level:
                start = max(start, level[-1].last + 1)
            name, kind = found
            seg = _Segment(f"{qualifier}.{name}", kind, max(start, header_row + 1), last)
            self.segments.append(seg)
            level.append(seg)
            body_node = inner.child_by_field_name("body")
            if inner.type in spec.containers and body_node is not None and not self.fits(seg):
                members = self.collect(body_node, seg.symbol, spec.members, inner.start_point.row)
                seg.holes = [(m.first, m.last) for m in members]
        return level

    def _unwrap(self, node: Node) -> Node:
        for _ in range(3):
            if node.type not in self.spec.wrappers:
                break
            inner = node.child_by_field_name("definition") or node.child_by_field_name(
                "declaration"
            )
            if inner is None:
                wanted = self.spec.symbols.keys() | self.spec.namespaces
                inner = next((c for c in node.named_children if c.type in wanted), None)
            if inner is None:
                break
            node = inner
        return node

    def _identify(self, node: Node, kinds: Mapping[str, str]) -> tuple[str, str] | None:
        """(name, kind) of a symbol node, or None when it is not one."""
        kind = kinds.get(node.type)
        if kind is None:
            return None
        if node.type in ("lexical_declaration", "variable_declaration"):
            for decl in node.named_children:
                value = decl.child_by_field_name("value")
                if value is not None and value.type in _FUNCTION_VALUES:
                    name = _text(decl.child_by_field_name("name"))
                    return (name, _FUNCTION_VALUES[value.type]) if name else None
            return None
        if node.type in self.spec.needs_body and node.child_by_field_name("body") is None:
            return None
        name = self._name(node)
        return (name, kind) if name else None

    def _name(self, node: Node) -> str | None:
        if node.type == "method_declaration" and self.spec is GO:
            receiver = node.child_by_field_name("receiver")
            owner = _first_of_type(receiver, "type_identifier") if receiver else None
            method = _text(node.child_by_field_name("name"))
            return f"{_text(owner)}.{method}" if owner is not None and method else method
        if node.type == "type_declaration":  # Go: type X struct{...} (the first spec names it)
            spec = next(
                (c for c in node.named_children if c.type in ("type_spec", "type_alias")), None
            )
            return _text(spec.child_by_field_name("name")) if spec else None
        if node.type == "impl_item":  # Rust: impl [Trait for] Type
            return _text(_first_of_type(node.child_by_field_name("type"), "type_identifier"))
        if node.type == "type_definition":  # C: typedef struct {...} name_t;
            kind_node = node.child_by_field_name("type")
            if kind_node is None or kind_node.child_by_field_name("body") is None:
                return None
        name = node.child_by_field_name("name")
        if name is not None:
            return _text(name)
        declarator = node.child_by_field_name("declarator")  # C/C++ functions, typedefs
        while declarator is not None and declarator.type not in _DECLARATOR_NAMES:
            declarator = declarator.child_by_field_name("declarator")
        return _text(declarator)


def _first_of_type(node: Node | None, node_type: str) -> Node | None:
    if node is None or node.type == node_type:
        return node
    for child in node.named_children:
        found = _first_of_type(child, node_type)
        if found is not None:
            return found
    return None


def _cut(line: str, budget: int, count_tokens: TokenCounter) -> list[str]:
    """A line longer than the budget, cut into pieces that fit (by characters)."""
    pieces = []
    while line:
        size = max(1, len(line) * budget // max(count_tokens(line), 1))
        while size > 1 and count_tokens(line[:size]) > budget:
            size = size * 3 // 4
        pieces.append(line[:size])
        line = line[size:]
    return pieces


def _emit(
    context: str,
    symbol: str,
    kind: str,
    rows: list[int],
    lines: list[str],
    line_tokens: list[int],
    max_tokens: int,
    count_tokens: TokenCounter,
) -> list[CodeChunk]:
    """The chunks of one symbol: one, or ``| part N`` pieces at line boundaries."""
    # A context line longer than 3/4 of the budget (a very deep path) still leaves room for
    # a quarter of it: such chunks go over max_tokens rather than into one-character pieces.
    # The reserve covers the part number (a 1 MiB file has fewer than a million lines) and
    # the newline added after a cut piece of a line.
    reserve = count_tokens(f"{context} | part 999999\n\n")
    budget = max(max_tokens // 4, max_tokens - reserve)
    parts: list[tuple[list[int], str]] = []
    rows_now: list[int] = []
    text_now: list[str] = []
    used = 0
    for row in rows:
        cost = line_tokens[row]
        if used + cost > budget and text_now:
            parts.append((rows_now, "".join(text_now)))
            rows_now, text_now, used = [], [], 0
        if cost > budget:
            parts.extend(([row], piece) for piece in _cut(lines[row], budget, count_tokens))
            continue
        rows_now.append(row)
        text_now.append(lines[row])
        used += cost
    if text_now:
        parts.append((rows_now, "".join(text_now)))
    chunks = []
    for number, (part_rows, code) in enumerate(parts, start=1):
        head = context if len(parts) == 1 else f"{context} | part {number}"
        if not code.endswith("\n"):
            code += "\n"
        chunks.append(
            CodeChunk(symbol, kind, f"{head}\n{code}", part_rows[0] + 1, part_rows[-1] + 1)
        )
    return chunks


def chunk_code(
    path: str,
    text: str,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = approx_tokens,
) -> list[CodeChunk] | None:
    """The chunks of one source file, or None for prose and languages it does not know."""
    spec = language_for(path)
    if spec is None:
        return None
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens has value {max_tokens!r}: must be >= {MIN_MAX_TOKENS}")
    if not text.strip():
        return []
    lines = _split_lines(text)
    line_tokens = [count_tokens(line) for line in lines]
    module = module_name(path)
    tree = _parser(spec).parse(text.encode("utf-8"))

    def context(kind: str, symbol: str) -> str:
        return f"{spec.comment} {path} | {kind} {symbol}"

    def fits(seg: _Segment) -> bool:
        cost = count_tokens(context(seg.kind, seg.symbol) + "\n")
        return cost + sum(line_tokens[seg.first : seg.last + 1]) <= max_tokens

    walker = _Walker(spec, fits)
    walker.collect(tree.root_node, module, spec.symbols)

    owned = {row for seg in walker.segments for row in range(seg.first, seg.last + 1)}
    module_rows = [r for r in range(len(lines)) if r not in owned and lines[r].strip()]
    chunks: list[CodeChunk] = []
    if module_rows:  # blank lines left out: they only separate the symbols
        chunks += _emit(
            context("module", module),
            module,
            "module",
            module_rows,
            lines,
            line_tokens,
            max_tokens,
            count_tokens,
        )
    for seg in sorted(walker.segments, key=lambda s: s.first):
        rows = seg.rows(lines)
        if any(lines[r].strip() for r in rows):
            chunks += _emit(
                context(seg.kind, seg.symbol),
                seg.symbol,
                seg.kind,
                rows,
                lines,
                line_tokens,
                max_tokens,
                count_tokens,
            )
    return chunks
