"""Refuse a storage switch that would leave a workspace's graph behind.

LightRAG keeps a workspace in one set of storages. When the configuration names other storages
than the ones holding the workspace's data (an upgrade from the old default ``file`` to
``postgres``, or from Milvus Lite to pgvector), LightRAG would start on empty storages and the
graph built so far would silently drop out of every query. The worker refuses to start instead
(engines/lightrag_inproc.py), and the workers role runs this same file on each worker host in
its preflight, before anything changes (``python3 storage_guard.py --working-dir ...``).

Standard library only: the preflight runs it with the host's own python3, before the app venv
exists or is upgraded.

What "holds data" means, per storage kind (LightRAG 1.5.7 layouts):
- file KV / doc status / graph: ``<working_dir>/<workspace>/kv_store_*.json`` larger than an
  empty ``{}``, or ``*.graphml`` with a ``<node`` element;
- file vectors: ``<working_dir>/<workspace>/vdb_*.json`` with a non-empty ``data`` list;
- Milvus Lite vectors: a collection named ``<workspace>_*`` under ``<working_dir>/milvus.db``.
PostgreSQL tables are not inspected here (a switch away from PostgreSQL leaves its tables
intact and is reversible by switching back).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

MILVUS_DIR = "milvus.db"  # Milvus Lite's data directory (MILVUS_URI; pymilvus wants ".db")
_EMPTY_JSON_BYTES = 64  # an empty KV store is "{}"; anything larger holds records
_GRAPHML_PROBE_BYTES = 1 << 16  # the first <node> appears right after the graphml header


@dataclass(frozen=True, slots=True)
class Leftover:
    """A storage that holds the workspace's data but is not the configured one."""

    kind: str  # "file" | "milvus"
    role: str  # "KV, doc status and graph" | "vectors"
    path: Path


def milvus_uri(working_dir: str | Path) -> str:
    """Milvus Lite's data directory for ``working_dir`` (one per worker process)."""
    return str(Path(working_dir) / MILVUS_DIR)


def _json_holds_data(path: Path) -> bool:
    if path.stat().st_size <= _EMPTY_JSON_BYTES:
        return False
    if not path.name.startswith("vdb_"):
        return True
    try:
        with path.open("rb") as handle:
            data = json.load(handle).get("data")
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: assume it matters
    return bool(data)


def _graphml_holds_data(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"<node" in handle.read(_GRAPHML_PROBE_BYTES)


def milvus_collections(working_dir: str | Path, workspace: str) -> list[Path]:
    """The workspace's collections in Milvus Lite's data directory (any database)."""
    root = Path(working_dir) / MILVUS_DIR
    found: list[Path] = []
    for collections in [root / "collections", *root.glob("databases/*/collections")]:
        if collections.is_dir():
            found += [c for c in collections.iterdir() if c.name.startswith(f"{workspace}_")]
    return sorted(found)


def leftovers(
    working_dir: str | Path, workspace: str, storage: str, vector_storage: str
) -> list[Leftover]:
    """The storages holding ``workspace``'s data that the configuration does not name."""
    base = Path(working_dir)
    space = base / workspace
    found: list[Leftover] = []
    if storage != "file" and space.is_dir():
        found += [
            Leftover("file", "KV, doc status and graph", p)
            for p in sorted(space.glob("kv_store_*.json"))
            if _json_holds_data(p)
        ]
        found += [
            Leftover("file", "KV, doc status and graph", p)
            for p in sorted(space.glob("*.graphml"))
            if _graphml_holds_data(p)
        ]
    if vector_storage != "file" and space.is_dir():
        found += [
            Leftover("file", "vectors", p)
            for p in sorted(space.glob("vdb_*.json"))
            if _json_holds_data(p)
        ]
    if vector_storage != "milvus":
        found += [Leftover("milvus", "vectors", p) for p in milvus_collections(base, workspace)]
    return found


def problem(found: list[Leftover], workspace: str, storage: str, vector_storage: str) -> str:
    """One message naming what was found, the variables, and the two ways out."""
    where = ", ".join(sorted({f"{f.kind} {f.role} ({f.path.parent})" for f in found}))
    keep = []
    if any(f.kind == "file" and f.role != "vectors" for f in found):
        keep.append("orchestrator_engine_storage: file")
    if any(f.role == "vectors" for f in found):
        kinds = sorted({f.kind for f in found if f.role == "vectors"})
        keep.append(f"orchestrator_engine_vector_storage: {kinds[0]}")
    return (
        f"workspace {workspace!r} holds data in {where}, but the configuration names "
        f"orchestrator_engine_storage={storage!r} and orchestrator_engine_vector_storage="
        f"{vector_storage!r}: starting would leave that graph out of every query. Either keep "
        f"the old storages (set {' and '.join(keep)} in the inventory), or switch on purpose: "
        "re-ingest the documents into the new storages, move the old data aside (e.g. "
        "`mv <dir> <dir>.old` for each directory named here), and deploy again "
        "(roles/orchestrator/README.md, 'Storages')."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--working-dir", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--vector-storage", required=True)
    args = parser.parse_args(argv)
    found = leftovers(args.working_dir, args.workspace, args.storage, args.vector_storage)
    if found:
        print(problem(found, args.workspace, args.storage, args.vector_storage))
        return 3
    print(f"workspace {args.workspace!r}: no data left in other storages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
