"""Repository indexing (issue 16): plan a run from a git tree, chunk code by symbol.

    plan.py     pure decisions: parse ``git ls-tree``, skip rules, manifest diff -> Plan
    mirror.py   the git calls (subprocess, argv lists) that feed plan.py: plan_commit()
    chunker.py  code-aware chunks (tree-sitter): one per top-level function or class
    languages.py  which tree-sitter nodes are symbols, per language (read by chunker.py)
    workflow.py   the Temporal workflow (repo-index:{repo}:{branch}) and its payloads
    activities.py its activities; runs.py the runs in PostgreSQL; mirrors.py the mirror cache
    askpass.py    git's askpass program: a repository's credential_ref, read by reference
    runner.py     the operator's command (seed 000's runner) in a checkout: run_repo_command
    worker.py     ``python -m shield_orchestrator.indexing.worker``: one Temporal worker

Layering: imports nothing from api, workers or engines (tests/repo/test_layering.py).
"""
