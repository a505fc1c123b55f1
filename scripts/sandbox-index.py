#!/usr/bin/env python3
"""sandbox-index: `make sandbox` indexes this repository's own git history in the sandbox.

    scripts/sandbox-index.py HOST [--back N] [--include GLOB]...   (mk/deploy.mk sandbox-index)

1. The history of HEAD leaves this checkout as a git bundle (no path of this machine goes
   anywhere) and becomes a bare repository on the sandbox host, owned by the indexers' service
   user: /srv/shield-sandbox/shield-orchestrator.git, its branch ``main`` set to HEAD~N.
2. As a user would, with shieldctl inside the host against the sandbox API: ``repos add``
   (an existing registration is reused), ``repos index``, then ``repos show`` until the run
   ends. Printed: files indexed and skipped by reason, the run's chunks (one LightRAG
   document each), the entities and relations LightRAG extracted from them.
3. The branch moves to HEAD and the repository is indexed again: printed, how few files and
   documents that touched (documents deleted and added) against the repository's total.

The counts beyond ``repos show`` (chunks, documents, entities, relations) come from PostgreSQL
on the host (psql as the postgres user), as ``shieldctl submit`` reads its graph counts.
Exit 0 when both runs completed; 1 with one line naming the problem otherwise.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BARE = "/srv/shield-sandbox/shield-orchestrator.git"  # readable by the indexers (ProtectHome)
BUNDLE = "/srv/shield-sandbox/self.bundle"
BRANCH = "main"
SERVICE_USER = "shield"  # orchestrator_user: the indexers' user (the mirror is cloned as it)
RUN_TIMEOUT_S = 600.0
SHIELDCTL_ENV = (
    "-e", "SHIELD_API_URL=https://127.0.0.1:8000",
    "-e", "SHIELD_CA_FILE=/etc/shield-orchestrator/tls/ca.crt",
)  # fmt: skip


class SandboxIndexError(Exception):
    """One line naming what went wrong and where to look."""


def run(argv: list[str], *, stdin: bytes | None = None) -> str:
    out = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if out.returncode != 0:
        err = (out.stderr or out.stdout).decode(errors="replace").strip()[-600:]
        raise SandboxIndexError(f"`{shlex.join(argv[:6])} ...` exited {out.returncode}: {err}")
    return out.stdout.decode()


class Sandbox:
    """The sandbox host, reached with podman exec (root inside the host)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sh(self, script: str) -> str:
        return run(["podman", "exec", "-i", self.name, "/bin/sh", "-eu"], stdin=script.encode())

    def shieldctl(self, *args: str) -> str:
        return run(["podman", "exec", *SHIELDCTL_ENV, self.name, "shieldctl", *args])

    def sql(self, query: str, **params: str) -> list[str]:
        """One row per line, fields separated by '|' (psql -tA as the postgres user); the
        query reads ``params`` as psql variables (:'name': quoted by psql, never spliced)."""
        psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-tA",
                "-d", "shield_orchestrator", "-v", "ON_ERROR_STOP=1"]  # fmt: skip
        for name, value in params.items():
            psql += ["-v", f"{name}={value}"]
        out = run(["podman", "exec", "-i", self.name, *psql, "-f", "-"], stdin=query.encode())
        return out.split("\n")[:-1]


def commits(back: int) -> tuple[str, str]:
    """(HEAD~back, HEAD) of this checkout; a clear refusal when the history is too short."""
    try:
        head = run(["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD^{commit}"]).strip()
        base = run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"HEAD~{back}^{{commit}}"])
    except SandboxIndexError as exc:
        raise SandboxIndexError(
            f"this checkout has no HEAD~{back} ({exc}); make sandbox indexes the repository's own "
            "history: use a clone with its history (git fetch --unshallow)"
        ) from exc
    return base.strip(), head


def ship_history(box: Sandbox, base: str) -> None:
    """HEAD's history as a bundle into a bare repository on the host, ``main`` at ``base``."""
    local = ROOT / "build" / "sandbox" / "self.bundle"
    local.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "-C", str(ROOT), "bundle", "create", "-q", str(local), "HEAD"])
    box.sh(f"mkdir -p {Path(BUNDLE).parent} && chown {SERVICE_USER}: {Path(BUNDLE).parent}")
    run(["podman", "cp", str(local), f"{box.name}:{BUNDLE}"])
    as_user = f"runuser -u {SERVICE_USER} -- git"
    box.sh(
        f"chown {SERVICE_USER}: {BUNDLE}\n"
        f"[ -d {BARE} ] || {as_user} init -q --bare {BARE}\n"
        f"{as_user} -C {BARE} fetch -q {BUNDLE} +HEAD:refs/sandbox/head\n"
        f"{as_user} -C {BARE} update-ref refs/heads/{BRANCH} {base}\n"
        f"{as_user} -C {BARE} symbolic-ref HEAD refs/heads/{BRANCH}\n"
    )


def move_branch(box: Sandbox, commit: str) -> None:
    box.sh(f"runuser -u {SERVICE_USER} -- git -C {BARE} update-ref refs/heads/{BRANCH} {commit}")


def indexers_seen(box: Sandbox, timeout_s: float = 90.0) -> None:
    """Wait until the API sees Temporal and an indexer polling its task queue there (its
    /health/detailed): an API that dials another address or namespace than the indexers poll
    would accept the index request and nothing would ever run it."""
    deadline = time.monotonic() + timeout_s
    while True:
        temporal = json.loads(box.shieldctl("health"))["temporal"]
        if temporal["ok"] and temporal["indexers"]:
            return
        if time.monotonic() > deadline:
            raise SandboxIndexError(
                f"the API sees {'no indexer polling' if temporal['ok'] else 'no Temporal at'} "
                f"{temporal['address']} namespace {temporal['namespace']!r} task queue "
                f"{temporal['task_queue']!r} ({temporal.get('error') or 'no poller'}) after "
                f"{timeout_s:.0f} s: orchestrator_temporal_* must be the indexers' (in the sandbox "
                "host: shieldctl health; journalctl -u 'shield-orchestrator-indexer@*')"
            )
        time.sleep(2)


def show(box: Sandbox, repo_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(box.shieldctl("repos", "show", repo_id))
    return answer


def index(box: Sandbox, repo_id: str, commit: str) -> dict[str, Any]:
    """Trigger a run and wait until it ends: its state when it indexed ``commit``."""
    before = (show(box, repo_id)["index"].get("last_run") or {}).get("run_id")
    # forced: a failed earlier sandbox run's backoff never holds this one back (the plan still
    # compares the tree with the manifest: unchanged files are not ingested again)
    box.shieldctl("repos", "index", repo_id, "--force")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        state = show(box, repo_id)["index"]
        last = state.get("last_run") or {}
        if last.get("run_id") not in (None, before) and last["status"] != "planned":
            if last["status"] == "completed" and state["indexed_commit"] == commit:
                return state
            raise SandboxIndexError(
                f"the run at {last['commit'][:12]} ended {last['status']}: {last.get('error')} "
                f"(shieldctl repos show {repo_id}; journalctl -u 'shield-orchestrator-indexer@*')"
            )
        if time.monotonic() > deadline:
            raise SandboxIndexError(
                f"not indexed at {commit[:12]} after {RUN_TIMEOUT_S:.0f} s: state "
                f"{state['state']}, last error {state.get('last_error')} (in the sandbox host: "
                "journalctl -u 'shield-orchestrator-indexer@*' -u shield-temporal)"
            )
        time.sleep(1)


# The LightRAG documents of the repository's indexed files: each file's job (the manifest,
# repo_files) made one document per chunk, ``shield-<job>-<chunk>`` (a chunk whose text the
# graph already held makes none: LightRAG stores identical text once).
REPO_DOCUMENTS = """
SELECT d.id FROM repo_files m JOIN lightrag_doc_status d
  ON d.workspace = :'ws' AND d.id LIKE 'shield-' || m.job_id || '-%'
WHERE m.repo = :'repo' AND m.branch = :'branch'
"""
# The chunks of the repository's indexed files (their jobs), the entities and relations
# LightRAG extracted from the repository's documents, and the workspace graph's totals.
RUN_GRAPH = """
SELECT (SELECT coalesce(sum(j.chunks_total), 0) FROM repo_files m
        JOIN jobs j ON j.job_id = m.job_id WHERE m.repo = :'repo' AND m.branch = :'branch'),
       (SELECT count(DISTINCT e) FROM lightrag_full_entities x,
               jsonb_array_elements_text(x.entity_names) e
        WHERE x.workspace = :'ws' AND EXISTS (SELECT 1 FROM repo_files m WHERE m.repo = :'repo'
              AND m.branch = :'branch' AND x.id LIKE 'shield-' || m.job_id || '-%')),
       (SELECT count(DISTINCT r) FROM lightrag_full_relations x,
               jsonb_array_elements(x.relation_pairs) r
        WHERE x.workspace = :'ws' AND EXISTS (SELECT 1 FROM repo_files m WHERE m.repo = :'repo'
              AND m.branch = :'branch' AND x.id LIKE 'shield-' || m.job_id || '-%')),
       (SELECT count(*) FROM lightrag_graph_nodes WHERE workspace = :'ws'),
       (SELECT count(*) FROM lightrag_graph_edges WHERE workspace = :'ws')
"""


def repo_documents(box: Sandbox, repo: dict[str, Any]) -> set[str]:
    params = {"repo": repo["repo_id"], "branch": BRANCH, "ws": repo["workspace"]}
    return set(box.sql(REPO_DOCUMENTS, **params))


def run_graph(box: Sandbox, repo: dict[str, Any]) -> dict[str, int]:
    params = {"repo": repo["repo_id"], "branch": BRANCH, "ws": repo["workspace"]}
    row = box.sql(RUN_GRAPH, **params)[0]
    keys = ("chunks", "entities", "relations", "graph_entities", "graph_relations")
    return dict(zip(keys, (int(v) for v in row.split("|")), strict=True))


def by_count(counts: dict[str, int]) -> str:
    items = sorted(((n, k) for k, n in counts.items() if n), reverse=True)
    return ", ".join(f"{k} {n}" for n, k in items) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandbox-index", description=__doc__.split("\n\n")[0])
    parser.add_argument("host", help="the sandbox host (podman container)")
    parser.add_argument("--back", type=int, default=5, help="first index HEAD~BACK, then HEAD")
    parser.add_argument("--include", action="append", default=[], help="glob (repeatable)")
    args = parser.parse_args(argv)
    box = Sandbox(args.host)
    try:
        base, head = commits(args.back)
        indexers_seen(box)
        ship_history(box, base)
        globs = [a for g in args.include for a in ("--include", g)]
        repo_id = box.shieldctl("repos", "add", BARE, "--branch", BRANCH, *globs).strip()
        registered = show(box, repo_id)["include"]
        if registered != args.include:  # a registration keeps its globs (url, branch, workspace)
            raise SandboxIndexError(
                f"{BARE} is registered with include {registered}, not {args.include}: in the "
                f"sandbox, `shieldctl repos remove {repo_id}` (or make sandbox-down) first"
            )
        included = " ".join(args.include) or "everything"
        print(f"sandbox: this repository's history in the sandbox: {BARE} (branch {BRANCH}), "
              f"include {included}; repository {repo_id}")  # fmt: skip
        started = time.monotonic()
        index(box, repo_id, base)
        repo, elapsed = show(box, repo_id), time.monotonic() - started
        state, last = repo["index"], repo["index"]["last_run"]
        graph, docs = run_graph(box, repo), repo_documents(box, repo)
        skipped = last["skipped"]
        print(
            f"sandbox: indexed HEAD~{args.back} ({base[:12]}) in {elapsed:.0f} s: "
            f"{state['indexed_files']} files indexed ({by_count(last['changes'])}), "
            f"{sum(skipped.values())} skipped ({by_count(skipped)}); {graph['chunks']} chunks, "
            f"{len(docs)} documents of the repository in LightRAG -> {graph['entities']} "
            f"entities, {graph['relations']} relations (the graph: {graph['graph_entities']} "
            f"entities, {graph['graph_relations']} relations)"
        )
        if graph["chunks"] > len(docs):
            print(f"sandbox: {graph['chunks'] - len(docs)} chunks had text already in the graph "
                  "(LightRAG stores identical text once)")  # fmt: skip
        move_branch(box, head)
        started = time.monotonic()
        index(box, repo_id, head)
        repo, elapsed = show(box, repo_id), time.monotonic() - started
        state, last = repo["index"], repo["index"]["last_run"]
        after = repo_documents(box, repo)
        print(
            f"sandbox: re-indexed HEAD~{args.back} -> HEAD ({head[:12]}) in {elapsed:.0f} s: "
            f"{sum(last['changes'].values())} of {state['indexed_files']} files changed "
            f"({by_count(last['changes'])}), {last['unchanged']} unchanged and untouched; "
            f"LightRAG documents: {len(docs - after)} deleted, {len(after - docs)} added, "
            f"{len(docs & after)} untouched"
        )
    except SandboxIndexError as exc:
        print(f"sandbox-index: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
