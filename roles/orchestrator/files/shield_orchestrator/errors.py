"""The exception tree of shield-orchestrator (one base; the API maps it to HTTP errors).

The classes live here unless a module is named (those belong to one service and are raised
only there)::

    ShieldError
    ├── ConfigError               a setting has an invalid value (names the key and the value)
    ├── MigrationError            a migration is missing, changed after being applied, or failed
    ├── JobNotFound               no job with that id in Redis nor in PostgreSQL
    ├── MalformedMessage          a stream entry that cannot be processed: dead-lettered at once
    │   └── UnknownKind           its ``kind`` has no handler here (names the kind)
    ├── RegistryError             services/job_registry.py: job creation refused
    │   ├── QueueFull             the ingestion stream holds max_queue_pending entries (429)
    │   ├── IdempotencyConflict   same Idempotency-Key, different request (409)
    │   └── NotRetryable          retry-failed on an active job, or nothing left to retry
    ├── BadCursor                 services/keyset.py: a GET /jobs or GET /repos cursor not ours
    └── EngineError               raised by an engine (engines/base.py re-exports these)
        ├── EngineOverloaded      back off and try again later; does not spend a retry attempt
        ├── ChunkError            this chunk failed; retried with backoff up to retry_attempts
        │   └── ChunkTimeout      the per-task timeout expired
        ├── PermanentChunkError   this chunk can never succeed: dead-lettered at once
        └── WorkspaceBusyError    engines/workspace_lock.py: another process owns the workspace
"""

from __future__ import annotations


class ShieldError(Exception):
    """Base of every error raised on purpose by shield_orchestrator."""


class ConfigError(ShieldError):
    """A configuration value is invalid; the message names the key and the value."""

    def __init__(self, key: str, value: object, problem: str) -> None:
        super().__init__(f"Config {key!r} has value {value!r}. {problem}")
        self.key = key
        self.value = value


class MigrationError(ShieldError):
    """The database schema cannot be brought to the version this code expects."""


class JobNotFound(ShieldError):  # noqa: N818 (the name is the contract)
    """No job with this id, neither in Redis nor in PostgreSQL."""


class MalformedMessage(ShieldError):  # noqa: N818 (the name is the contract)
    """A stream entry that can never be processed (missing field, bad JSON, unknown kind/job)."""


class UnknownKind(MalformedMessage):
    """An entry whose ``kind`` the reader has no handler for (services/messages.py)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown message kind {kind!r}")
        self.kind = kind


class EngineError(ShieldError):
    """Base of the errors an engine raises from ``process``."""


class EngineOverloaded(EngineError):  # noqa: N818 (the name is the contract)
    """The engine cannot take this chunk now; the pool backs off without spending an attempt."""


class ChunkError(EngineError):
    """Processing this chunk failed in a way that may succeed on retry."""


class ChunkTimeout(ChunkError):  # noqa: N818 (the name is the contract)
    """Processing this chunk took longer than the per-task timeout."""


class PermanentChunkError(EngineError):
    """Processing this chunk can never succeed (bad input): dead-letter it without retrying."""
