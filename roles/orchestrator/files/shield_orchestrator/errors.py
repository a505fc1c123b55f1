"""The exception tree of shield-orchestrator (one base; the API maps it to HTTP errors).

ShieldError
├── ConfigError               a setting has an invalid value (names the key and the value)
├── StatusTransitionError     a job status would move backwards (queued -> ... is forward only)
├── MigrationError            a migration is missing, changed after being applied, or failed
├── JobNotFound               no job with that id in Redis nor in PostgreSQL
├── MalformedMessage          a stream entry that cannot be processed: dead-lettered at once
└── EngineError               raised by an engine's ``process`` (engines/base.py re-exports)
    ├── EngineOverloaded      back off and try again later; does not spend a retry attempt
    ├── ChunkError            this chunk failed; retried with backoff up to retry_attempts
    │   └── ChunkTimeout      the per-task timeout expired
    └── PermanentChunkError   this chunk can never succeed: dead-lettered at once
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


class StatusTransitionError(ShieldError):
    """A job status change that is not forward (see services/job_status.py)."""


class MigrationError(ShieldError):
    """The database schema cannot be brought to the version this code expects."""


class JobNotFound(ShieldError):  # noqa: N818 (the name is the contract)
    """No job with this id, neither in Redis nor in PostgreSQL."""


class MalformedMessage(ShieldError):  # noqa: N818 (the name is the contract)
    """A stream entry that can never be processed (missing field, bad JSON, unknown kind/job)."""


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
