"""What the chunker knows of each language: which tree-sitter nodes are symbols.

A :class:`LanguageSpec` names, by tree-sitter node type:

- ``symbols``: definitions that become chunks (top level, or inside a namespace), with the
  kind shown in the context line;
- ``containers``: symbols whose body may be split into member chunks when the whole does
  not fit the budget (classes, Rust impls and traits), and ``members``: what in such a
  body becomes a chunk of its own (methods, nested classes);
- ``namespaces``: always descended into, their name joins the qualified name (a C++
  namespace, a Rust ``mod``, a TypeScript namespace);
- ``transparent``: descended into without a name (``#ifdef`` blocks, ``extern "C"``, a
  Java enum's declarations);
- ``wrappers``: nodes around a definition (Python decorators, ``export``, C++
  ``template<>``): the chunk covers the wrapper, the name and kind come from the inside;
- ``attached``: comments (and Rust ``#[...]`` attributes) directly above a symbol, which
  belong to its chunk;
- ``needs_body``: symbols that count only with a body (a C ``struct s;`` declaration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tree-sitter is imported only when a file is parsed (see chunker.py)
    from tree_sitter_language_pack import SupportedLanguage


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    grammar: SupportedLanguage
    comment: str  # how a line comment starts: the context line is one
    symbols: dict[str, str]
    containers: frozenset[str] = frozenset()
    members: dict[str, str] = field(default_factory=dict)
    namespaces: frozenset[str] = frozenset()
    transparent: frozenset[str] = frozenset()
    wrappers: frozenset[str] = frozenset()
    attached: frozenset[str] = frozenset({"comment"})
    needs_body: frozenset[str] = frozenset()


PYTHON = LanguageSpec(
    grammar="python",
    comment="#",
    symbols={"function_definition": "function", "class_definition": "class"},
    containers=frozenset({"class_definition"}),
    members={"function_definition": "method", "class_definition": "class"},
    wrappers=frozenset({"decorated_definition"}),
)

_JS_SYMBOLS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    # const f = () => ..., const C = class {...}: only when the value is a function or class
    "lexical_declaration": "function",
    "variable_declaration": "function",
}
JAVASCRIPT = LanguageSpec(
    grammar="javascript",
    comment="//",
    symbols=_JS_SYMBOLS,
    containers=frozenset({"class_declaration"}),
    members={"method_definition": "method"},
    wrappers=frozenset({"export_statement"}),
)
_TS_SYMBOLS = {
    **_JS_SYMBOLS,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "enum_declaration": "enum",
}
TYPESCRIPT = LanguageSpec(
    grammar="typescript",
    comment="//",
    symbols=_TS_SYMBOLS,
    containers=frozenset({"class_declaration", "abstract_class_declaration"}),
    members={"method_definition": "method"},
    namespaces=frozenset({"internal_module", "module"}),
    wrappers=frozenset({"export_statement", "expression_statement", "ambient_declaration"}),
)
TSX = LanguageSpec(
    grammar="tsx",
    comment="//",
    symbols=_TS_SYMBOLS,
    containers=TYPESCRIPT.containers,
    members=TYPESCRIPT.members,
    namespaces=TYPESCRIPT.namespaces,
    wrappers=TYPESCRIPT.wrappers,
)
GO = LanguageSpec(
    grammar="go",
    comment="//",
    symbols={
        "function_declaration": "function",
        "method_declaration": "method",  # qualified by its receiver's type
        "type_declaration": "type",
    },
)
RUST = LanguageSpec(
    grammar="rust",
    comment="//",
    symbols={
        "function_item": "function",
        "struct_item": "type",
        "enum_item": "type",
        "union_item": "type",
        "trait_item": "trait",
        "impl_item": "impl",
        "macro_definition": "macro",
    },
    containers=frozenset({"impl_item", "trait_item"}),
    members={"function_item": "method"},
    namespaces=frozenset({"mod_item"}),
    attached=frozenset({"line_comment", "block_comment", "attribute_item"}),
)
_JAVA_TYPES = {
    "class_declaration": "class",
    "interface_declaration": "interface",
    "enum_declaration": "enum",
    "record_declaration": "record",
    "annotation_type_declaration": "annotation",
}
JAVA = LanguageSpec(
    grammar="java",
    comment="//",
    symbols=_JAVA_TYPES,
    containers=frozenset(_JAVA_TYPES),
    members={
        "method_declaration": "method",
        "constructor_declaration": "constructor",
        "compact_constructor_declaration": "constructor",
        **_JAVA_TYPES,
    },
    transparent=frozenset({"enum_body_declarations"}),
    attached=frozenset({"line_comment", "block_comment"}),
)
_C_SYMBOLS = {
    "function_definition": "function",
    "struct_specifier": "type",
    "union_specifier": "type",
    "enum_specifier": "type",
    "type_definition": "type",
}
_PREPROCESSOR = frozenset(
    {"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"}
)
C = LanguageSpec(
    grammar="c",
    comment="//",
    symbols=_C_SYMBOLS,
    transparent=_PREPROCESSOR,
    needs_body=frozenset({"struct_specifier", "union_specifier", "enum_specifier"}),
)
CPP = LanguageSpec(
    grammar="cpp",
    comment="//",
    symbols={**_C_SYMBOLS, "class_specifier": "class"},
    containers=frozenset({"class_specifier", "struct_specifier"}),
    members={
        "function_definition": "method",
        "class_specifier": "class",
        "struct_specifier": "class",
    },
    namespaces=frozenset({"namespace_definition"}),
    transparent=_PREPROCESSOR | {"linkage_specification"},
    wrappers=frozenset({"template_declaration"}),
    needs_body=frozenset(
        {"struct_specifier", "union_specifier", "enum_specifier", "class_specifier"}
    ),
)

# File name suffix -> language. ``.h`` is taken as C (C++ headers parse mostly well as C).
BY_SUFFIX: dict[str, LanguageSpec] = {
    ".py": PYTHON,
    ".pyi": PYTHON,
    ".js": JAVASCRIPT,
    ".mjs": JAVASCRIPT,
    ".cjs": JAVASCRIPT,
    ".jsx": JAVASCRIPT,
    ".ts": TYPESCRIPT,
    ".mts": TYPESCRIPT,
    ".cts": TYPESCRIPT,
    ".tsx": TSX,
    ".go": GO,
    ".rs": RUST,
    ".java": JAVA,
    ".c": C,
    ".h": C,
    ".cc": CPP,
    ".cpp": CPP,
    ".cxx": CPP,
    ".c++": CPP,
    ".hh": CPP,
    ".hpp": CPP,
    ".hxx": CPP,
}


def language_for(path: str) -> LanguageSpec | None:
    """The language of a repository path by its suffix; None for prose and the unknown."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return BY_SUFFIX.get(name[dot:].lower()) if dot > 0 else None
