"""Vector stores for LightRAG on a host without pgvector (issue 14): growth, disk, memory, recall.

    python -m bench.bench_vectors          # prints the table; with BENCH_JSON set, writes results

Each candidate is one of LightRAG's OWN vector storage classes, built the way LightRAG builds
it: a ``LightRAG`` instance with ``vector_storage=<class>`` (its ``global_config``: working_dir,
workspace, embedding_batch_num, cosine_better_than_threshold, ...), ``initialize_storages()``,
then its ``chunks_vdb`` (namespace ``chunks``, meta fields full_doc_id/content/file_path). Per
"document" the bench calls ``upsert`` with 10 vectors and ``index_done_callback()``, as
LightRAG's pipeline does after each document, growing to N vectors; then 200 fixed queries
through ``query(text, top_k=10)``.

Candidates (the vector storages LightRAG ships that run here without a server):
NanoVectorDBStorage (JSON file), FaissVectorDBStorage (faiss IndexFlatIP + meta JSON) and
MilvusVectorDBStorage on Milvus Lite (embedded, MILVUS_URI = a local path), with its default
128 MiB memtable and with a 16 MiB one (segments and their index built during the run). pgvector
(PGVectorStorage) is not installable on Debian 12; recall is measured against the EXACT
top-k computed with numpy, which is what PostgreSQL + pgvector returns without an ANN index.

The embedding function is deterministic and needs no model: the text "v<i> ..." embeds to
row i of a seeded synthetic table, "q<j>" to query j. The table is a 100-cluster mixture in a
32-dimensional latent space projected to 256 dimensions plus noise, normalised (embeddings
of real text have a low intrinsic dimension; ANN recall on real data may differ).

Per candidate, in its own process (so peak RSS is its own):
- time per document (upsert + index_done_callback) for each tenth of the run, and the last
  tenth ÷ the first tenth (the growth curve; flat ~ 1);
- bytes written to storage per document (``/proc/self/io`` write_bytes, per tenth);
- peak RSS (ru_maxrss) and the RSS before the store was initialised (the bench's own table);
- disk used by the working directory at the end; query latency p50/p99; recall@10 against the
  exact top-10 (cosine) over the vectors the candidate holds.

Knobs: BENCH_VECTORS_N (default 50000 vectors), BENCH_VECTORS_BUDGET_S (default 480: a
candidate that has not reached N by then stops at the size reached, and the report says so),
BENCH_VECTORS_ONLY=nano,faiss,milvus,milvus-seg, BENCH_VECTORS_IMPORT=<child result files
measured elsewhere, e.g. pgvector on a Debian 13 host> (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/bench_vectors.py` puts bench/ first
    sys.path.insert(0, str(REPO))

from bench import result  # noqa: E402

DIM = 256
LATENT = 32
CLUSTERS = 100
PER_DOC = 10  # vectors per document: one upsert + one index_done_callback
QUERIES = 200
TOP_K = 10
SEED = 14
TENTHS = 10
FILLER = "lorem ipsum dolor sit amet " * 20  # ~540 bytes of content per vector, like a chunk

# key -> (LightRAG storage class, label)
CANDIDATES = {
    "nano": ("NanoVectorDBStorage", "NanoVectorDB (JSON file)"),
    "faiss": ("FaissVectorDBStorage", "Faiss IndexFlatIP (+ meta JSON)"),
    "milvus": ("MilvusVectorDBStorage", "Milvus Lite (embedded)"),
    "milvus-seg": ("MilvusVectorDBStorage", "Milvus Lite (embedded), memtable 16 MiB"),
    "pgvector": ("PGVectorStorage", "PostgreSQL + pgvector (LightRAG's HNSW index)"),
}
LOCAL = ["nano", "faiss", "milvus", "milvus-seg"]  # by default; pgvector only where it installs
F32 = npt.NDArray[np.float32]
# Milvus Lite keeps new rows in a memtable (searched by brute force, no index) until it holds
# 128 MiB; then it writes a parquet segment and builds its index (AUTOINDEX = faiss HNSW).
# 50,000 vectors of this bench fit in the default memtable; "milvus-seg" flushes every 16 MiB.
MILVUS_LITE_ENV = {"milvus-seg": {"MILVUS_LITE_MEMTABLE_MEMORY_LIMIT_BYTES": str(16 * 2**20)}}


def dataset(n: int) -> tuple[F32, F32]:
    """``n`` base vectors and the QUERIES query vectors, unit length, from a fixed seed."""
    rng = np.random.default_rng(SEED)
    centers = rng.standard_normal((CLUSTERS, LATENT))
    projection = rng.standard_normal((LATENT, DIM)) / np.sqrt(LATENT)

    def draw(count: int) -> F32:
        latent = centers[rng.integers(0, CLUSTERS, count)] + 0.5 * rng.standard_normal(
            (count, LATENT)
        )
        x = latent @ projection + 0.1 * rng.standard_normal((count, DIM))
        unit: F32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return unit

    return draw(n), draw(QUERIES)


def exact_top_k(base: F32, queries: F32, k: int = TOP_K) -> list[list[int]]:
    """The exact k nearest rows by cosine (brute force: pgvector's answer without an index)."""
    sims = queries @ base.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    rows: list[list[int]] = np.take_along_axis(top, order, axis=1).tolist()
    return rows


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return hits / sum(len(e) for e in exact)


def tenths(values: list[float]) -> list[float]:
    """Mean of each tenth of ``values`` (in order)."""
    size = max(1, len(values) // TENTHS)
    return [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(TENTHS)]


def _proc_io_write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_used(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


async def _proc_io_write_bytes_async() -> int:
    return _proc_io_write_bytes()


def _where() -> str:
    release = Path("/etc/os-release").read_text()
    pretty = next((x for x in release.splitlines() if x.startswith("PRETTY_NAME=")), "=?")
    return pretty.split("=", 1)[1].strip('"')


def _postgres_pss_mib() -> float:
    """The summed PSS of this host's postgres processes (shared buffers counted once)."""
    pss_kib = 0
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return pss_kib / 1024


class _PgServer:
    """What the PostgreSQL server does for PGVectorStorage: WAL written, memory, disk."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls) -> _PgServer:
        import asyncpg

        conn = await asyncpg.connect(
            host=os.environ.get("POSTGRES_HOST", "localhost"),
            port=int(os.environ.get("POSTGRES_PORT", "5432")),
            user=os.environ["POSTGRES_USER"],
            password=os.environ["POSTGRES_PASSWORD"],
            database=os.environ["POSTGRES_DATABASE"],
        )
        return cls(conn)

    async def wal_bytes(self) -> int:
        return int(await self.conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))

    async def close(self) -> dict[str, Any]:
        """Database size, server version and the server processes' PSS (same host only)."""
        size = await self.conn.fetchval("SELECT pg_database_size(current_database())")
        version = await self.conn.fetchval("SHOW server_version")
        ext = await self.conn.fetchval("SELECT extversion FROM pg_extension WHERE extname='vector'")
        await self.conn.close()
        return {
            "disk_bytes": int(size),
            "server_pss_mib": _postgres_pss_mib(),
            "where": f"{_where()}, PostgreSQL {version.split()[0]}, pgvector {ext}",
        }


# --- one candidate, in its own process ------------------------------------------------------


class _Bytes:
    """A tokenizer that never downloads (LightRAG's default tiktoken would)."""

    def encode(self, content: str) -> list[int]:
        return list(content.encode())

    def decode(self, tokens: list[int]) -> str:
        return bytes(tokens).decode(errors="ignore")


def _build_rag(storage: str, workdir: Path, base: F32, queries: F32) -> Any:
    from lightrag import LightRAG
    from lightrag.utils import EmbeddingFunc, Tokenizer

    async def embed(texts: list[str], **_: Any) -> F32:
        rows = []
        for text in texts:
            head = text.split(" ", 1)[0]
            rows.append(base[int(head[1:])] if head[0] == "v" else queries[int(head[1:])])
        return np.stack(rows)

    async def no_llm(*_: Any, **__: Any) -> str:
        return ""

    if storage == "PGVectorStorage":
        for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DATABASE"):
            if name not in os.environ:
                raise SystemExit(f"bench_vectors: pgvector needs {name} in the environment")
    if storage == "MilvusVectorDBStorage":
        # pymilvus parses MILVUS_URI when it is imported (orm/connections.py) and refuses a
        # local path there; LightRAG needs the variable set before it builds the storage.
        # So: import it first, then set the variable (the deployment must do the same).
        import lightrag.kg.milvus_impl  # noqa: F401

        os.environ["MILVUS_URI"] = str(workdir / "milvus.db")  # a local path: Milvus Lite
        os.environ["MILVUS_DB_NAME"] = "default"
    logging.getLogger("lightrag").setLevel(logging.WARNING)
    return LightRAG(
        working_dir=str(workdir),
        workspace="bench",
        vector_storage=storage,
        embedding_func=EmbeddingFunc(
            embedding_dim=DIM, max_token_size=8192, func=embed, model_name="bench-table"
        ),
        llm_model_func=no_llm,
        tokenizer=Tokenizer(model_name="bench-bytes", tokenizer=_Bytes()),
        enable_llm_cache=False,
        auto_manage_storages_states=False,
    )


async def measure(key: str, n: int, budget_s: float, workdir: Path) -> dict[str, Any]:
    """Grow one candidate to ``n`` vectors (or to ``budget_s``), then query it."""
    import lightrag  # noqa: F401  (common to every candidate: not the store's memory)

    if key in MILVUS_LITE_ENV:  # read by milvus_lite when it is imported (constants.py)
        os.environ.update(MILVUS_LITE_ENV[key])
    base, queries = dataset(n)
    rss_before = _rss_mib()
    rag = _build_rag(CANDIDATES[key][0], workdir, base, queries)
    await rag.initialize_storages()
    vdb = rag.chunks_vdb
    server = await _PgServer.open() if key == "pgvector" else None
    written = server.wal_bytes if server else _proc_io_write_bytes_async
    per_doc_s: list[float] = []
    per_doc_bytes: list[float] = []
    started = time.perf_counter()
    for doc in range(n // PER_DOC):
        first = doc * PER_DOC
        batch = {
            f"chunk-{i}": {
                "content": f"v{i} {FILLER}",
                "tokens": 120,
                "chunk_order_index": i - first,
                "full_doc_id": f"doc-{doc}",
                "file_path": f"doc-{doc}.txt",
            }
            for i in range(first, first + PER_DOC)
        }
        io0 = await written()
        t0 = time.perf_counter()
        await vdb.upsert(batch)
        await vdb.index_done_callback()
        per_doc_s.append(time.perf_counter() - t0)
        per_doc_bytes.append(await written() - io0)
        if time.perf_counter() - started > budget_s:
            break
    ingest_s = time.perf_counter() - started
    held = len(per_doc_s) * PER_DOC
    found: list[list[int]] = []
    latencies: list[float] = []
    for j in range(QUERIES):
        t0 = time.perf_counter()
        hits = await vdb.query(f"q{j}", top_k=TOP_K)
        latencies.append(time.perf_counter() - t0)
        found.append([int(str(h["id"]).removeprefix("chunk-")) for h in hits])
    extra: dict[str, Any] = {"where": _where(), "disk_bytes": disk_used(workdir)}
    if server:
        extra.update(await server.close())
    await rag.finalize_storages()
    latencies.sort()
    return {
        **extra,
        "key": key,
        "n_target": n,
        "n": held,
        "capped": held < n,
        "ingest_s": ingest_s,
        "doc_ms_tenths": [1000 * v for v in tenths(per_doc_s)],
        "doc_bytes_tenths": tenths(per_doc_bytes),
        "bytes_per_doc": sum(per_doc_bytes) / len(per_doc_bytes),
        "rss_before_mib": rss_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "query_ms_p50": 1000 * latencies[len(latencies) // 2],
        "query_ms_p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "found": found,
    }


# --- the parent: every candidate, the exact top-k, the table ---------------------------------


def run_candidate(key: str, n: int, budget_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-vectors-{key}-") as tmp:
        out = Path(tmp) / "out.json"
        workdir = Path(tmp) / "rag"
        workdir.mkdir()
        cmd = [sys.executable, "-m", "bench.bench_vectors", "--candidate", key, "--n", str(n)]
        cmd += ["--budget-s", str(budget_s), "--workdir", str(workdir), "--out", str(out)]
        proc = subprocess.run(cmd, cwd=REPO, timeout=budget_s + 900, check=False)
        if proc.returncode != 0 or not out.is_file():
            return {"key": key, "error": f"exit status {proc.returncode}"}
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def _row(m: dict[str, Any], exact: list[list[int]], base: F32, queries: F32) -> list[Any]:
    label = CANDIDATES[m["key"]][1] + (f" [{m['where']}]" if m.get("imported") else "")
    if "error" in m:
        return [label, None, None, None, None, None, None, None, None, None, m["error"]]
    held_exact = exact if not m["capped"] else exact_top_k(base[: m["n"]], queries)
    m["recall"] = recall(m["found"], held_exact)
    first, last = m["doc_ms_tenths"][0], m["doc_ms_tenths"][-1]
    m["growth"] = last / first
    return [
        label,
        m["n"] if not m["capped"] else f"{m['n']} (capped)",
        round(first, 2),
        round(last, 2),
        round(m["growth"], 2),
        round(m["doc_bytes_tenths"][-1] / 1024, 1),
        round(m["peak_rss_mib"])
        if "server_pss_mib" not in m
        else f"{m['peak_rss_mib']:.0f} + server PSS {m['server_pss_mib']:.0f}",
        round(m["peak_rss_mib"] - m["rss_before_mib"]),
        round(m["disk_bytes"] / 2**20, 1),
        f"{m['query_ms_p50']:.2f} / {m['query_ms_p99']:.2f}",
        round(m["recall"], 3),
    ]


COLUMNS = [
    "store (LightRAG class)",
    "vectors",
    "ms/doc, first tenth",
    "ms/doc, last tenth",
    "last ÷ first",
    "KiB written/doc, last tenth",
    "peak RSS MiB",
    "RSS over the bench's own table, MiB",
    "disk MiB at end",
    "query ms p50 / p99",
    "recall@10 vs exact",
]
GROWTH_GOAL = 1.25  # time per document, last tenth ÷ first tenth (= chunks/s at >= 0.8x)
RECALL_GOAL = 0.95


def decide(measured: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The candidate to use on Debian 12 and why: flat growth and recall first, then memory."""
    ok = [
        m
        for m in measured
        if "error" not in m
        and not m.get("imported")
        and not m["capped"]
        and m["growth"] <= GROWTH_GOAL
        and m["recall"] >= RECALL_GOAL
    ]
    if not ok:
        return None, (
            f"No candidate kept its time per document flat (last tenth ÷ first tenth <= "
            f"{GROWTH_GOAL}) with recall@10 >= {RECALL_GOAL} at the full size."
        )
    best = min(ok, key=lambda m: (m["peak_rss_mib"], m["doc_ms_tenths"][-1]))
    return best["key"], (
        f"{CANDIDATES[best['key']][1]} ({CANDIDATES[best['key']][0]}) is the one that meets "
        f"both criteria (time per document last tenth ÷ first tenth <= {GROWTH_GOAL}, "
        f"recall@10 >= {RECALL_GOAL} against the exact top-10) at the full size"
        + ("" if len(ok) == 1 else ", with the lowest peak RSS of those that do")
        + "."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_vectors")
    ap.add_argument("--candidate", choices=sorted(CANDIDATES))
    ap.add_argument("--n", type=int, default=int(os.environ.get("BENCH_VECTORS_N", "50000")))
    ap.add_argument(
        "--budget-s", type=float, default=float(os.environ.get("BENCH_VECTORS_BUDGET_S", "480"))
    )
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.candidate:  # the child: one candidate
        one = asyncio.run(measure(args.candidate, args.n, args.budget_s, args.workdir))
        args.out.write_text(json.dumps(one))
        return 0
    only = [k for k in os.environ.get("BENCH_VECTORS_ONLY", "").split(",") if k] or LOCAL
    base, queries = dataset(args.n)
    exact = exact_top_k(base, queries)
    measured: list[dict[str, Any]] = []
    for key in only:
        print(f"bench_vectors: {key} to {args.n} vectors", flush=True)
        measured.append(run_candidate(key, args.n, args.budget_s))
    for path in [p for p in os.environ.get("BENCH_VECTORS_IMPORT", "").split(",") if p]:
        imported = json.loads(Path(path).read_text())  # a child's --out, measured elsewhere
        if imported["n_target"] != args.n:
            raise SystemExit(f"bench_vectors: {path} was measured at N={imported['n_target']}")
        measured.append({**imported, "imported": True})
    rows = [_row(m, exact, base, queries) for m in measured]
    chosen, why = decide(measured)
    bench = _benchmark(measured, rows, chosen, why, args)
    print(result_table(bench))
    if os.environ.get("BENCH_JSON"):
        result.write(Path(os.environ["BENCH_JSON"]), [bench])
    return 0


def result_table(b: result.Benchmark) -> str:
    lines = [" | ".join(b.columns)]
    lines += [" | ".join("–" if c is None else str(c) for c in row) for row in b.rows]
    return "\n".join([*lines, "", *b.notes])


def _benchmark(
    measured: list[dict[str, Any]],
    rows: list[list[Any]],
    chosen: str | None,
    why: str,
    args: argparse.Namespace,
) -> result.Benchmark:
    chosen_m = next((m for m in measured if m["key"] == chosen), None)
    pg = next((m for m in measured if m["key"] == "pgvector" and "error" not in m), None)
    if pg:
        pg_note = (
            f"pgvector (PGVectorStorage) was measured in a Debian 13 systemd host of the "
            f"project's harness ({pg['where']}; the same script, N and seed, the client in the "
            "host's venv from the wheelhouse, PostgreSQL on the same host), its recall against "
            "the same exact top-10. LightRAG creates an HNSW index (m 16, ef_construction 64) "
            "on the vector column, so its answers are approximate too. For it, 'KiB "
            "written/doc' is the WAL the server wrote (pg_current_wal_lsn), 'disk' is "
            "pg_database_size, and the server's memory is the PSS of its processes at the end."
        )
    else:
        pg_note = (
            "pgvector (PGVectorStorage) is not measured here: Debian 12 has no pgvector package "
            "(Debian 13 ships postgresql-17-pgvector). 'recall@10 vs exact' is against the "
            "exact cosine top-10 computed with numpy, which is what pgvector returns without an "
            "ANN index (LightRAG creates an HNSW index, so its answers are approximate too)."
        )
    notes = [
        f"Decision (Debian 12, no pgvector): {why}",
        f"{args.n} vectors of dimension {DIM} per candidate, {PER_DOC} per document (one "
        "upsert + one index_done_callback, as LightRAG's pipeline does per document), "
        f"{QUERIES} fixed queries, top_k {TOP_K}; each candidate in its own process, in its own "
        f"empty working directory; budget {args.budget_s:.0f} s of ingestion per candidate "
        "('capped': it stopped at the size reached, its recall is against the exact top-10 of "
        "what it holds).",
        "Built as LightRAG builds them: LightRAG(vector_storage=<class>, working_dir, "
        "workspace) then initialize_storages(), and the instance's chunks_vdb (meta fields "
        "full_doc_id, content, file_path; ~540 bytes of content per vector); LightRAG's "
        "defaults for embedding_batch_num and cosine_better_than_threshold; Milvus Lite with "
        "MILVUS_URI = <working dir>/milvus.db and LightRAG's default index settings.",
        "Embeddings: a seeded synthetic table (100 clusters in a 32-dimensional latent space, "
        "projected to 256 dimensions plus noise, unit length); recall on real embeddings may "
        "differ.",
        pg_note,
        "KiB written/doc: /proc/self/io write_bytes (bytes the process sent to the storage "
        "layer) per document in the last tenth of the run; the first tenth's figure is in the "
        "per-tenth lines below. 'RSS over the bench's own table': peak RSS minus the RSS "
        "before the store was initialised (LightRAG imported, the bench's numpy table of vectors"
        " built); the store's own libraries and data count in it.",
    ]
    for m in measured:
        if "error" in m:
            notes.append(f"{CANDIDATES[m['key']][1]}: failed ({m['error']}; see the log).")
            continue
        notes.append(
            f"{CANDIDATES[m['key']][1]}: ms per document by tenth "
            + ", ".join(f"{v:.2f}" for v in m["doc_ms_tenths"])
            + "; KiB written per document by tenth "
            + ", ".join(f"{v / 1024:.1f}" for v in m["doc_bytes_tenths"])
            + f"; ingestion {m['ingest_s']:.0f} s."
        )
    curve = result.Curve(
        title="Time per document (10 vectors) by tenth of the run",
        x_label="vectors held",
        y_label="ms per document",
        series={
            CANDIDATES[m["key"]][1]: [
                ((i + 1) * m["n"] / TENTHS, v) for i, v in enumerate(m["doc_ms_tenths"])
            ]
            for m in measured
            if "error" not in m
        },
    )
    return result.Benchmark(
        key="vectors",
        title="Vectors: LightRAG's vector stores on a host without pgvector (growth, disk, "
        "memory, recall)",
        goal=f"the chosen store: time per document last tenth ÷ first tenth <= {GROWTH_GOAL} "
        f"and recall@10 >= {RECALL_GOAL} against the exact top-10",
        goal_met=chosen is not None,
        ratio=None if chosen_m is None else round(chosen_m["growth"], 3),
        ratio_label=""
        if chosen_m is None
        else f"{CANDIDATES[chosen_m['key']][1]}: last ÷ first tenth (time per document)",
        baseline="the exact cosine top-10 (numpy brute force) for recall; the candidate's own "
        "first tenth for growth",
        columns=COLUMNS,
        rows=rows,
        notes=notes,
        curves=[curve],
    )


if __name__ == "__main__":
    sys.exit(main())
