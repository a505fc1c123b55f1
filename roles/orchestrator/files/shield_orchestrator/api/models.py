"""Request and response models of the HTTP API (every response has one).

Request-shape limits come from the rendered constants of api/config.py, so they appear in the
OpenAPI schema (maxItems, maxLength, the workspace enum) and a client can read them there.
Text fields are validated after ``strip()``: whitespace-only text is empty text.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from shield_orchestrator import keys, settings
from shield_orchestrator.api import config

# Text with at least one non-whitespace character and no NUL (PostgreSQL text cannot hold one).
# The character class of the one required character excludes NUL too (``\S`` alone matches a
# NUL), so the pattern, checked by pydantic-core, refuses every NUL without a Python callback.
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"


ChunkText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=config.MAX_CHUNK_CHARS, pattern=TEXT_PATTERN
    ),
]
SourceUri = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=config.MAX_SOURCE_URI_CHARS,
        pattern=TEXT_PATTERN,
    ),
]
SourceType = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=config.MAX_SOURCE_TYPE_CHARS,
        pattern=TEXT_PATTERN,
    ),
]
WORKSPACES: tuple[str, ...] = keys.WORKSPACES  # orchestrator_workspaces
DEFAULT_WORKSPACE = WORKSPACES[0]


def _known_workspace(value: str) -> str:
    if value not in WORKSPACES:
        raise ValueError(f"unknown workspace {value!r}; known: {', '.join(WORKSPACES)}")
    return value


Workspace = Annotated[
    str,
    AfterValidator(_known_workspace),
    WithJsonSchema({"type": "string", "enum": list(WORKSPACES)}),
]


class ChunkIn(BaseModel):
    """One chunk of a document (the seed's shape)."""

    model_config = ConfigDict(extra="forbid")

    text: ChunkText = Field(description="The chunk's text; stripped, then 1..MAX_CHUNK_CHARS.")
    source_uri: SourceUri = Field(description="Where the chunk comes from (file path, URL).")
    metadata: dict[str, JsonValue] | None = Field(
        default=None, description="Free-form JSON object stored with the chunk."
    )


class IngestRequest(BaseModel):
    """Body of POST /lightrag/ingest-async."""

    model_config = ConfigDict(extra="forbid")

    chunks: list[ChunkIn] = Field(min_length=1, max_length=config.MAX_CHUNKS_PER_REQUEST)
    source_type: SourceType
    workspace: Workspace = Field(default=DEFAULT_WORKSPACE)

    @field_validator("chunks")
    @classmethod
    def _no_duplicate_chunk(cls, chunks: list[ChunkIn]) -> list[ChunkIn]:
        first_seen: dict[str, int] = {}
        for i, chunk in enumerate(chunks):
            j = first_seen.setdefault(chunk.text, i)
            if j != i:
                raise ValueError(f"chunks[{i}].text duplicates chunks[{j}].text")
        return chunks


class JobAccepted(BaseModel):
    """202: the job exists and its chunks are on the ingestion stream."""

    job_id: str
    status: str = Field(description="Always 'queued' for a new job.")
    chunks_total: int
    status_url: str
    events_url: str
    retry_of: str | None = Field(default=None, description="Set by retry-failed: the old job.")


StatusName = Literal["queued", "processing", "completed", "completed_with_errors", "failed"]


class JobOut(BaseModel):
    """GET /jobs/{job_id}."""

    job_id: str
    status: StatusName
    workspace: str
    chunks_total: int
    chunks_processed: int
    chunks_failed: int
    percent_complete: float = Field(description="Chunks with an outcome (processed or failed).")
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime | None
    error_summary: str | None = Field(description="How many chunks failed; see /failures.")
    source: Literal["redis", "postgres"] = Field(description="Where this copy was read.")


class JobsPage(BaseModel):
    """GET /jobs: a page of jobs, newest first."""

    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` (with the same filters) for the next page; null: none."
    )


class FailureOut(BaseModel):
    """One dead-lettered chunk (its text is not returned)."""

    chunk_id: str
    source_uri: str | None
    error: str
    attempts: int | None
    failed_at: dt.datetime | None


class FailuresOut(BaseModel):
    job_id: str
    failures: list[FailureOut]


class HealthOut(BaseModel):
    status: Literal["ok"]


class DependencyOut(BaseModel):
    ok: bool
    latency_ms: float | None
    error: str | None


class WorkerOut(BaseModel):
    consumer: str
    last_seen_age_s: float
    processed: int | None
    rate_per_s: float | None


class WorkspaceOut(BaseModel):
    name: str
    owners: list[str] = Field(
        description="Worker processes (host:instance) serving it now: its one owner with the "
        "in-process LightRAG engines, every live process with the others."
    )
    owned_for_s: float | None = Field(description="Since the owner took it (lease age).")
    queue_depth: int = Field(description="Entries on its ingestion stream.")
    pending: int = Field(description="Entries delivered to its owner, not yet acked.")


class TemporalPollerOut(BaseModel):
    identity: str = Field(description="The indexer process as Temporal names it: <pid>@<host>.")
    polls: list[Literal["workflow", "activity"]] = Field(description="The task queues it polls.")
    last_seen_age_s: float = Field(description="Seconds since it last asked Temporal for work.")


class TemporalOut(BaseModel):
    """Repository indexing's dependency (services/temporal_status.py); never makes the health
    degraded: chunk ingestion and queries do not use Temporal."""

    ok: bool
    latency_ms: float | None
    error: str | None = Field(description="Why Temporal could not be asked (None when ok).")
    address: str
    namespace: str
    task_queue: str
    indexers: list[TemporalPollerOut] = Field(
        description="The indexer processes Temporal saw polling the task queue lately."
    )


class HealthDetailedOut(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: Redis or PostgreSQL down.")
    redis: DependencyOut
    postgres: DependencyOut
    temporal: TemporalOut
    workers: list[WorkerOut]
    workspaces: list[WorkspaceOut] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="E.g. a workspace whose work waits with no owner."
    )
    queue_depth: int | None = Field(description="Entries on the workspaces' ingestion streams.")
    pending: int | None = Field(description="Entries delivered to a worker, not yet acked.")
    dead_letter: int | None = Field(description="Entries on the dead-letter stream.")
    processing_rate_per_s: float | None = Field(description="Sum of the workers' rates.")


QueryMode = Literal["mix", "local", "global", "hybrid", "naive"]  # services/queries.MODES
MAX_QUERY_CHARS = 4000  # a question, not a document


class QueryIn(BaseModel):
    """Body of POST /lightrag/query: a question about one workspace's graph."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS, pattern=TEXT_PATTERN
        ),
    ] = Field(description="The question; stripped, then 1..MAX_QUERY_CHARS characters.")
    workspace: Workspace = Field(default=DEFAULT_WORKSPACE)
    mode: QueryMode = Field(
        default="mix",
        description="LightRAG's retrieval mode: mix (graph + vectors), local (entities), "
        "global (relations), hybrid (both), naive (text chunks by vector only).",
    )
    only_need_context: bool = Field(
        default=False, description="Return the retrieved context, without a generated answer."
    )
    top_k: int | None = Field(
        default=None, ge=1, le=200, description="Entities/relations to retrieve (LightRAG's)."
    )
    timeout_s: float = Field(
        default=60.0, ge=1, le=600, description="How long to wait for the workspace's worker."
    )


class QueryOut(BaseModel):
    """The answer (or with only_need_context the context) from the workspace's own graph."""

    workspace: str
    mode: QueryMode
    engine: str = Field(description="Who answered and how, e.g. offline extraction (no LLM).")
    answer: str | None = Field(description="The generated answer; null with only_need_context.")
    context: str | None = Field(description="The retrieved context; null unless asked for.")
    served_by: str = Field(description="The worker process (host:instance) that answered.")


# --- Repositories (issue 16): POST/GET/DELETE /repos, POST /repos/{repo_id}/index -----------
MAX_URL_CHARS = 2048
MAX_GLOBS = 100
MAX_REPO_FILE_BYTES = 64 * 1024 * 1024  # a larger max_file_bytes is a 422
MAX_REPO_FILES = 1_000_000


def _repo_url(value: str) -> str:
    from shield_orchestrator.services.repositories import check_repo_url

    return check_repo_url(value)


RepoUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_CHARS),
    AfterValidator(_repo_url),
]


def _branch(value: str) -> str:
    """A branch name git accepts (no space, no "..", not an option); refs/heads/ is implied."""
    if value.startswith(("-", "/", ".")) or value.endswith(("/", ".", ".lock")):
        raise ValueError("a branch name cannot start with -, / or . nor end with /, . or .lock")
    if ".." in value or "//" in value or "/." in value:
        raise ValueError("a branch name cannot hold '..', '//' or '/.'")
    return value


BranchName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._/-]+$"
    ),
    AfterValidator(_branch),
]
Glob = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=512, pattern=TEXT_PATTERN),
]
MAX_COMMAND_WORDS = 64
CommandWord = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=TEXT_PATTERN)]
# the names the indexers lend to git (settings.repo_credential): REPO_CREDENTIAL_<NAME>
CredentialRef = Annotated[
    str,
    StringConstraints(max_length=128, pattern=rf"^{settings.REPO_CREDENTIAL_PREFIX}[A-Z0-9_]+$"),
]


def _period(value: str) -> str:
    from shield_orchestrator.services.repositories import parse_period

    parse_period(value)
    return value


Period = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_period)
]


class RepoIn(BaseModel):
    """Body of POST /repos: a repository to index (the same url, branch and workspace again:
    the existing registration; max_file_bytes, max_files, schedule and the command fields
    given again replace its values, the other fields are ignored)."""

    model_config = ConfigDict(extra="forbid")

    url: RepoUrl = Field(
        description="https://host/path, ssh://[user@]host/path, user@host:path or an absolute "
        "local path; never with credentials (see credential_ref)."
    )
    branch: BranchName = Field(description="The branch to index (required).")
    workspace: Workspace = Field(default=DEFAULT_WORKSPACE)
    include: list[Glob] = Field(
        default_factory=list, max_length=MAX_GLOBS, description="Only paths matching one of these."
    )
    exclude: list[Glob] = Field(
        default_factory=list, max_length=MAX_GLOBS, description="Paths matching one are skipped."
    )
    max_file_bytes: int = Field(
        default=1_048_576,
        ge=1,
        le=MAX_REPO_FILE_BYTES,
        description="Larger files are skipped (reason over_max_file_bytes).",
    )
    max_files: int = Field(
        default=100_000,
        ge=1,
        le=MAX_REPO_FILES,
        description="The most files of one commit to index: the first max_files indexable "
        "paths in path order; the run of a larger commit ends completed_with_errors naming "
        "the cap (skip reason over_max_files).",
    )
    schedule: Period | None = Field(
        default=None,
        description="Refresh period (e.g. 15m, 1h, 1h30m, 1d; 1m to 30d): a Temporal Schedule "
        "triggers the index that often (a trigger during a run folds into it).",
    )
    credential_ref: CredentialRef | None = Field(
        default=None,
        description="The NAME of an environment variable of the indexers holding the "
        "credential (never the credential itself).",
    )
    command: list[CommandWord] = Field(
        default_factory=list,
        max_length=MAX_COMMAND_WORDS,
        description="An operator-supplied command (argv list, no shell) run by the indexer in "
        "a checkout of the run's commit (indexing/runner.py); [] for none.",
    )
    command_timeout_s: int = Field(
        default=600, ge=1, le=86_400, description="Its process group is killed after this."
    )
    command_mode: Literal["after", "instead"] = Field(
        default="after",
        description="after: once the built-in indexer published the run; instead: in its place.",
    )


class RepoOut(BaseModel):
    """A registered repository."""

    repo_id: str
    url: str
    branch: str
    workspace: str
    include: list[str]
    exclude: list[str]
    max_file_bytes: int
    max_files: int
    credential_ref: str | None
    created_at: dt.datetime
    workflow_id: str = Field(description="Its Temporal workflow: repo-index:{repo_id}:{branch}.")
    schedule_s: int | None = Field(
        default=None,
        description="Refresh period in seconds (null: no schedule); its Temporal Schedule is "
        "repo-index-schedule:{repo_id}:{branch}.",
    )
    command: list[str] = Field(default_factory=list, description="The operator's command.")
    command_timeout_s: int = 600
    command_mode: Literal["after", "instead"] = "after"


class ReposPage(BaseModel):
    """GET /repos: registered repositories, oldest first."""

    repos: list[RepoOut]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` (same workspace filter) for the next page; null: none."
    )


class RepoRunOut(BaseModel):
    """The repository's latest indexing run (repo_index_runs)."""

    run_id: str
    status: Literal["planned", "completed", "completed_with_errors", "failed"]
    base_commit: str | None
    commit: str
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    unchanged: int = Field(description="Files whose blob was already indexed.")
    changes: dict[str, int] = Field(description="Changed files: added/modified/removed/renamed.")
    files: dict[str, int] = Field(description="The changed files by state (completed, failed...).")
    skipped: dict[str, int] = Field(description="Files not indexed, by reason.")


class RepoIndexOut(BaseModel):
    """What the indexer's tables say about the repository's branch."""

    state: Literal[
        "never_indexed", "running", "indexed", "completed_with_errors", "failed", "quarantined"
    ]
    indexed_commit: str | None
    indexed_at: dt.datetime | None
    indexed_files: int = Field(description="Files in the manifest (path, blob sha).")
    consecutive_failures: int = Field(
        description="Failed runs since the last successful one (5: quarantined)."
    )
    next_eligible_at: dt.datetime | None = Field(
        default=None,
        description="After a failure: a non-forced index request before it is refused (429).",
    )
    quarantined_at: dt.datetime | None = Field(
        default=None, description="Set: no index run without force (409) until one succeeds."
    )
    last_error: str | None = Field(description="The reason of the last failure or cap error.")
    runs: int = Field(description="Runs recorded (a run that failed before planning has none).")
    last_run: RepoRunOut | None


class RepoDetailOut(RepoOut):
    """GET /repos/{repo_id}: the registration and its indexing state."""

    index: RepoIndexOut


class RepoRemovedOut(BaseModel):
    """DELETE /repos/{repo_id}: unregistered; its documents leave the graph through a job."""

    repo_id: str
    removed: bool
    job_id: str | None = Field(
        description="The deletion job (GET /jobs/{job_id}); null: the repository had no "
        "document in the graph."
    )
    files: int = Field(description="Files whose documents the job deletes.")
    documents: int = Field(description="Documents the job deletes.")
    detail: str


class IndexIn(BaseModel):
    """Body of POST /repos/{repo_id}/index (optional)."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(default=False, description="Index even when the head is indexed.")


class IndexAccepted(BaseModel):
    """202: the repository's workflow runs; a trigger during a run gives the same ids."""

    repo_id: str
    workflow_id: str
    run_id: str = Field(description="The Temporal execution (the running one, if folded).")
    force: bool
    status_url: str


class ErrorOut(BaseModel):
    """Every error but 422: one sentence naming what is wrong."""

    detail: str


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: one item per invalid field; ``loc`` names it (the chunk text is never echoed)."""

    detail: list[ValidationItem]


def error_responses(
    *codes: int, extra: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the declared error models of these codes, plus ``extra``."""
    described = {
        400: "The body is not JSON text (for example not UTF-8).",
        401: "No API key, or an unknown one.",
        404: "No job with this id.",
        409: "Conflict (see detail).",
        413: "Request body larger than the limit.",
        422: "Invalid input; detail names each field.",
        429: "The ingestion queue is full; retry after Retry-After seconds.",
        502: "The workspace's engine failed answering (detail says how).",
        503: "A dependency is unavailable.",
        504: "No worker process serving the workspace answered in time.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model: type[BaseModel] = ValidationErrorOut if code == 422 else ErrorOut
        out[code] = {"model": model, "description": described[code]}
    out.update(extra or {})
    return out
