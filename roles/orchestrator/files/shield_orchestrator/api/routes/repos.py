"""POST /repos, GET /repos, GET /repos/{repo_id}, DELETE /repos/{repo_id},
POST /repos/{repo_id}/index (issue 16; services/repositories.py).

Registrations live in PostgreSQL; an index request is a signal-with-start of the repository's
Temporal workflow (``repo-index:{repo_id}:{branch}``), reached lazily: Temporal down is a 503
for indexing only (and for a registration with a schedule, and the DELETE of one). A
non-forced index request while the repository backs off is a 429 with Retry-After, while it
is quarantined a 409; both name force (indexing/health.py). DELETE answers 202 with the job
that takes the documents out of the graph (services/repositories.py's module doc).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status

from shield_orchestrator.api.deps import DbDep, RegistryDep
from shield_orchestrator.api.models import (
    IndexAccepted,
    IndexIn,
    RepoDetailOut,
    RepoIn,
    RepoIndexOut,
    RepoOut,
    RepoRemovedOut,
    ReposPage,
    Workspace,
    error_responses,
)
from shield_orchestrator.indexing import health
from shield_orchestrator.services import repositories
from shield_orchestrator.services.repositories import (
    NewRepository,
    Repository,
    RepositoryBusy,
    TemporalGateway,
    parse_period,
)

router = APIRouter(tags=["repositories"])

MAX_PAGE = 200  # repositories per page of GET /repos


async def _temporal(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


TemporalDep = Annotated[TemporalGateway, Depends(_temporal)]


def _not_found() -> dict[int | str, dict[str, object]]:
    from shield_orchestrator.api.models import ErrorOut

    return {404: {"model": ErrorOut, "description": "No repository with this id."}}


def _repo_out(repo: Repository) -> RepoOut:
    """The model's fields are Repository's attributes (workflow_id is its property)."""
    return RepoOut.model_validate(repo, from_attributes=True)


@router.post(
    "/repos",
    status_code=status.HTTP_201_CREATED,
    response_model=RepoOut,
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        extra={200: {"model": RepoOut, "description": "Already registered."}},
    ),
    summary="Register a repository to index (the same url, branch and workspace: the existing one)",
)
async def register_repo(
    body: RepoIn, request: Request, response: Response, db: DbDep, temporal: TemporalDep
) -> RepoOut:
    """With ``schedule``: the registration is stored, then its Temporal Schedule created or
    updated (Temporal down: 503, the registration stays; POST again to make the schedule)."""
    new = NewRepository(
        url=body.url,
        branch=body.branch,
        workspace=body.workspace,
        include=tuple(body.include),
        exclude=tuple(body.exclude),
        max_file_bytes=body.max_file_bytes,
        max_files=body.max_files,
        credential_ref=body.credential_ref,
        schedule_s=parse_period(body.schedule) if body.schedule else None,
        command=tuple(body.command),
        command_timeout_s=body.command_timeout_s,
        command_mode=body.command_mode,
    )
    given = {"schedule_s" if f == "schedule" else f for f in body.model_fields_set}
    if body.schedule is None:
        given.discard("schedule_s")
    repo, created = await repositories.register(db, new, frozenset(given))
    if repo.schedule_s is not None and given & {"schedule_s", "max_files", "max_file_bytes"}:
        await temporal.ensure_schedule(repo)  # its action carries the spec: keep it current
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = str(request.url_for("get_repo", repo_id=repo.repo_id).path)
    return _repo_out(repo)


@router.get(
    "/repos",
    response_model=ReposPage,
    responses=error_responses(401, 422, 503),
    summary="Registered repositories, oldest first, a page at a time",
)
async def list_repos(
    db: DbDep,
    workspace: Annotated[Workspace | None, Query(description="Only this workspace.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Repositories per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page.")
    ] = None,
) -> ReposPage:
    # a cursor not made for this filter raises BadCursor: a 422 naming it (api/errors.py)
    repos, next_cursor = await repositories.list_page(db, workspace, limit, cursor)
    return ReposPage(repos=[_repo_out(r) for r in repos], next_cursor=next_cursor)


@router.get(
    "/repos/{repo_id}",
    response_model=RepoDetailOut,
    responses=error_responses(401, 422, 503, extra=_not_found()),
    summary="A repository and its indexing state (indexed commit, failures, last run's counts)",
)
async def get_repo(repo_id: UUID, db: DbDep) -> RepoDetailOut:
    repo = await repositories.get(db, str(repo_id))
    state = await repositories.index_state(db, repo)
    # RepoIndexOut and RepoRunOut name IndexState's and LastRun's attributes
    index = RepoIndexOut.model_validate(state, from_attributes=True)
    return RepoDetailOut(**_repo_out(repo).model_dump(), index=index)


@router.delete(
    "/repos/{repo_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RepoRemovedOut,
    responses=error_responses(401, 409, 422, 429, 503, extra=_not_found()),
    summary="Unregister a repository; one job takes its documents out of the graph",
)
async def remove_repo(
    repo_id: UUID, db: DbDep, registry: RegistryDep, temporal: TemporalDep
) -> RepoRemovedOut:
    """The schedule goes first (Temporal down: 503, nothing removed); a run in progress is a
    409; then the deletion job is created and the registration removed. A failed deletion job
    keeps its failures: POST /jobs/{job_id}/retry-failed sends them again."""
    repo = await repositories.get(db, str(repo_id))
    if repo.schedule_s is not None:
        await temporal.delete_schedule(repo)
    try:
        removal = await repositories.remove(db, registry, repo)
    except RepositoryBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    where = f"job {removal.job_id}" if removal.job_id else "no job (nothing was indexed)"
    return RepoRemovedOut(
        repo_id=repo.repo_id,
        removed=True,
        job_id=removal.job_id,
        files=removal.files,
        documents=removal.documents,
        detail=(
            f"unregistered; {removal.documents} document(s) of {removal.files} file(s) leave "
            f"workspace {repo.workspace!r} through {where}"
        ),
    )


@router.post(
    "/repos/{repo_id}/index",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IndexAccepted,
    responses=error_responses(400, 401, 409, 413, 422, 429, 503, extra=_not_found()),
    summary="Index the repository now (a run in progress: folded into one follow-up, same ids)",
)
async def index_repo(
    repo_id: UUID,
    request: Request,
    db: DbDep,
    temporal: TemporalDep,
    body: Annotated[IndexIn | None, Body()] = None,
) -> IndexAccepted:
    """Not forced: refused while the repository backs off (429, Retry-After) or is
    quarantined (409), each naming force=true."""
    repo = await repositories.get(db, str(repo_id))
    force = body.force if body is not None else False
    if not force:
        now = await health.read(db, repo.repo_id, repo.branch)
        refused = health.refusal(now)
        if refused is not None and now.quarantined_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refused)
        if refused is not None:
            retry = str(max(1, int(now.wait_s + 0.999)))
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, refused, {"Retry-After": retry})
    triggered = await temporal.trigger(repo, force=force)
    return IndexAccepted(
        repo_id=repo.repo_id,
        workflow_id=triggered.workflow_id,
        run_id=triggered.run_id,
        force=force,
        status_url=str(request.url_for("get_repo", repo_id=repo.repo_id).path),
    )
