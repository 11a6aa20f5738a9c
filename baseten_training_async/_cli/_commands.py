"""The ``projects`` and ``jobs`` commands: thin wrappers over the SDK's resources.

Every command that takes a project accepts its name or its id (`resolve_project`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec

from .. import AsyncTrainingClient, JobStatus, TrainingJob, TrainingProject
from ._create import check_create_names, jobs_create, jobs_recreate
from ._exit import AlreadyFinishedError, UsageError
from ._metrics import show_metrics
from ._output import (
    JOB_COLUMNS,
    PROJECT_COLUMNS,
    Output,
    format_log_line,
    human_bytes,
    job_details,
    job_rows,
    one_line,
    project_details,
    project_rows,
    short_status,
    short_time,
)
from ._project import resolve_project
from ._spec import SpecFlags, build_spec, load_spec_file, parse_env
from ._transfer import download_checkpoint_files
from ._watch import jobs_supervise, jobs_wait, jobs_watch, prepare_jobs_supervise

__all__ = ["COMMANDS", "KNOWN_STATUSES", "PREPARE", "ClientCommand", "status_value"]

ClientCommand = Callable[[argparse.Namespace, AsyncTrainingClient, Output], Awaitable[int]]
"""A command that talks to the API: ``(args, client, out) -> exit code``."""

KNOWN_STATUSES: Final = tuple(
    s.removeprefix("TRAINING_JOB_")
    for s in (
        JobStatus.PENDING,
        JobStatus.QUEUED,
        JobStatus.CREATED,
        JobStatus.DEPLOYING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.DEPLOY_FAILED,
        JobStatus.STOPPED,
        JobStatus.PREEMPTED,
    )
)
"""Statuses ``--status`` accepts, in lifecycle order (``JobStatus`` without the prefix)."""


def status_value(text: str) -> str:
    """Accept ``running`` or ``RUNNING`` for ``TRAINING_JOB_RUNNING``; refuse unknown ones.

    Args:
        text: A status as typed on the command line.

    Returns:
        The status as the API spells it.

    Raises:
        UsageError: Not a known status.
    """
    short = text.strip().upper().removeprefix("TRAINING_JOB_")
    if short not in KNOWN_STATUSES:
        raise UsageError(f"--status {text!r}: unknown status; known: {', '.join(KNOWN_STATUSES)}")
    return f"TRAINING_JOB_{short}"


def _show_job(out: Output, job: TrainingJob, title: str | None = None) -> None:
    if out.json_mode:
        out.json(job)
    else:
        out.details(job_details(job), title=title)


def _show_jobs(out: Output, jobs: list[TrainingJob]) -> None:
    if out.json_mode:
        out.json(jobs)
    else:
        out.table(JOB_COLUMNS, job_rows(jobs), status_column=2)


def _show_project(out: Output, project: TrainingProject) -> None:
    if out.json_mode:
        out.json(project)
    else:
        out.details(project_details(project))


# --- projects ----------------------------------------------------------------------------


async def projects_list(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """List all projects."""
    projects = await client.projects.list()
    if out.json_mode:
        out.json(projects)
    else:
        out.table(PROJECT_COLUMNS, project_rows(projects))
    return 0


async def projects_upsert(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Create a project, or return the one with this name."""
    _show_project(out, await client.projects.upsert(args.name, team_id=args.team_id))
    return 0


async def projects_retrieve(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Show one project."""
    project = await resolve_project(client, args.project)
    _show_project(out, await client.projects.retrieve(project.id))
    return 0


async def projects_delete(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Delete a project."""
    project = await resolve_project(client, args.project)
    tombstone = await client.projects.delete(project.id)
    if out.json_mode:
        out.json(tombstone)
    else:
        out.line(f"deleted project {one_line(project.name)} ({one_line(tombstone.id)})")
    return 0


async def projects_cache_summary(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Show the files in a project's cache."""
    project = await resolve_project(client, args.project)
    summary = await client.projects.cache_summary(project.id)
    if out.json_mode:
        out.json(summary)
        return 0
    rows = [
        [one_line(f.path), human_bytes(f.size_bytes), short_time(f.modified), one_line(f.file_type)]
        for f in summary.file_summaries
    ]
    out.table(("PATH", "SIZE", "MODIFIED (UTC)", "TYPE"), rows)
    return 0


# --- jobs --------------------------------------------------------------------------------


def _spec_flags(args: argparse.Namespace) -> SpecFlags:
    return SpecFlags(
        name=args.name,
        image=args.image,
        accelerator=args.accelerator,
        nodes=args.nodes,
        cpu=args.cpu,
        memory=args.memory,
        commands=list(args.start_commands or []),
        env=parse_env(args.env or []),
    )


def prepare_jobs_create(args: argparse.Namespace, out: Output) -> None:
    """Read and validate the spec before any client exists, so usage errors come first.

    Args:
        args: Parsed arguments; ``args.job_spec`` is set.
        out: Where warnings go.

    Raises:
        UsageError: The spec file or flags are invalid.
    """
    file_spec = load_spec_file(args.spec) if args.spec else None
    args.job_spec = build_spec(file_spec, _spec_flags(args))
    check_create_names(args, args.job_spec, out)


def prepare_jobs_search(args: argparse.Namespace, out: Output) -> None:
    """Refuse unknown ``--status`` values before any request.

    Args:
        args: Parsed arguments; ``args.statuses`` is set.
        out: Unused.
    """
    args.statuses = [status_value(s) for s in args.status] if args.status else None


async def jobs_retrieve(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Show one job."""
    project = await resolve_project(client, args.project)
    _show_job(out, await client.jobs.retrieve(project.id, args.job_id))
    return 0


async def jobs_find(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Show a job by its id alone, whatever its project."""
    _show_job(out, await client.jobs.find(args.job_id))
    return 0


async def jobs_list(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """List a project's jobs."""
    project = await resolve_project(client, args.project)
    _show_jobs(out, await client.jobs.list(project.id))
    return 0


async def jobs_search(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Search jobs across projects."""
    project_id = None
    if args.project is not None:
        project_id = (await resolve_project(client, args.project)).id
    jobs = await client.jobs.search(
        project_id=project_id, job_id=args.job_id, statuses=args.statuses, order=args.order
    )
    _show_jobs(out, jobs)
    return 0


async def jobs_stop(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Stop a job; say so when it had already finished."""
    project = await resolve_project(client, args.project)
    current = await client.jobs.retrieve(project.id, args.job_id)
    if current.is_terminal:
        _show_job(out, current)
        message = (
            f"job {one_line(current.id)} had already finished as "
            f"{short_status(current.current_status)}: nothing to stop"
        )
        if args.ok_if_done:
            out.note(message)
            return 0
        raise AlreadyFinishedError(f"{message} (--ok-if-done to exit 0)")
    _show_job(out, await client.jobs.stop(project.id, args.job_id), title="stopped job")
    return 0


async def jobs_delete(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Delete a job."""
    project = await resolve_project(client, args.project)
    tombstone = await client.jobs.delete(project.id, args.job_id)
    if out.json_mode:
        out.json(tombstone)
    else:
        out.line(f"deleted job {one_line(tombstone.id)}")
    return 0


async def jobs_update(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Change a pending job's queue priority or availability model."""
    if args.priority is None and args.availability is None:
        raise UsageError("jobs update: pass --priority N and/or --availability MODEL")
    project = await resolve_project(client, args.project)
    job = await client.jobs.update(
        project.id, args.job_id, priority=args.priority, availability_model=args.availability
    )
    _show_job(out, job, title="updated job")
    return 0


def _show_fields(out: Output, value: Any, title: str | None = None) -> None:
    """A response: JSON, or its scalar fields as details (``--json`` shows everything)."""
    if out.json_mode:
        out.json(value)
        return
    pairs = [
        (name, one_line(str(field)))
        for name, field in msgspec.structs.asdict(value).items()
        if isinstance(field, str | int | float | bool)
    ]
    out.details(pairs, title=title)


async def jobs_queue_context(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Why a job waits in the queue (``--json`` for the jobs ahead and events)."""
    context = await client.jobs.queue_context(args.job_id)
    _show_fields(out, context)
    if not out.json_mode:
        out.note(
            f"{len(context.pending_ahead_at_submit)} jobs were ahead at submission, "
            f"{len(context.active_at_submit)} active; --json shows them and the events"
        )
    return 0


async def teams_list(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """List the organisation's teams."""
    teams = await client.teams.list()
    if out.json_mode:
        out.json(teams)
        return 0
    rows = [
        [one_line(t.id), one_line(t.name), "yes" if t.default else "", short_time(t.created_at)]
        for t in teams
    ]
    out.table(("ID", "NAME", "DEFAULT", "CREATED (UTC)"), rows)
    return 0


async def capacity_retrieve(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """GPU limits and usage (the same as ``jobs capacity``)."""
    return await jobs_capacity(args, client, out)


async def capacity_update(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Set how many GPUs of one type a team may use at once."""
    updated = await client.capacity.update(
        team_id=args.team_id, gpu_type=args.gpu_type, max_gpus=args.max_gpus
    )
    _show_fields(out, updated, title="updated capacity")
    return 0


async def sessions_auth_codes(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """The sign-in codes of a job's interactive sessions."""
    project = await resolve_project(client, args.project)
    codes = await client.jobs.sessions.auth_codes(project.id, args.job_id)
    if out.json_mode:
        out.json(codes)
        return 0
    rows = [[one_line(c.session_id), one_line(c.replica_id), one_line(c.auth_code)] for c in codes]
    out.table(("SESSION", "REPLICA", "CODE"), rows)
    return 0


async def sessions_update(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Extend an interactive session, or change when it is created."""
    if args.timeout_minutes is None and args.trigger is None:
        raise UsageError("sessions update: pass --timeout-minutes N and/or --trigger WHEN")
    project = await resolve_project(client, args.project)
    updated = await client.jobs.sessions.update(
        project.id,
        args.job_id,
        args.session_id,
        timeout_minutes=args.timeout_minutes,
        trigger=args.trigger,
    )
    _show_fields(out, updated, title="updated session")
    return 0


async def sessions_sign_ssh_key(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Sign an SSH public key for a session's SSH connection; prints the certificate."""
    try:
        public_key = (await asyncio.to_thread(Path(args.public_key).read_text)).strip()
    except OSError as exc:
        raise UsageError(f"cannot read {args.public_key}: {exc.strerror or exc}") from None
    project = await resolve_project(client, args.project)
    certificate = await client.jobs.sessions.sign_ssh_key(
        project.id, args.job_id, public_key=public_key, replica_id=args.replica
    )
    _show_fields(out, certificate)
    return 0


async def artifacts_upload_credentials(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Temporary credentials for uploading training artifacts (secrets: JSON only)."""
    if not out.json_mode:
        raise UsageError("artifacts upload-credentials prints secrets: pass --json to show them")
    out.json(await client.artifacts.upload_credentials())
    return 0


async def jobs_logs(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Print a job's logs; with ``--follow``, until the job finishes.

    With ``--json``, one JSON object per line, flushed as each line arrives.
    """
    project = await resolve_project(client, args.project)
    lines = client.jobs.logs(
        project.id,
        args.job_id,
        min_level=args.min_level,
        follow=args.follow,
        poll_interval=args.poll_interval,
    )
    async for line in lines:
        if out.json_mode:
            out.json_line(line)  # JSON escapes control characters: the data stays exact
        else:
            out.line(format_log_line(line))
    return 0


def _time_option(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    value = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[:-1].isdigit() and value[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: expected an ISO time (2026-01-31T12:00Z) or an age (30m, 6h, 2d)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def jobs_metrics(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """A job's CPU, GPU and storage metrics: a table, ``--json``, or ``--chart``."""
    project = await resolve_project(client, args.project)
    metrics = await client.jobs.metrics(
        project.id,
        args.job_id,
        start=_time_option(args.since, "--since"),
        end=_time_option(args.until, "--until"),
        step_seconds=args.step,
    )
    show_metrics(out, metrics, chart=args.chart, width=args.width)
    return 0


async def jobs_checkpoints(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """List the checkpoints a job has written."""
    project = await resolve_project(client, args.project)
    checkpoints = await client.jobs.checkpoints(project.id, args.job_id)
    if out.json_mode:
        out.json(checkpoints)
        return 0
    rows = [
        [
            one_line(c.checkpoint_id),
            one_line(c.checkpoint_type),
            one_line(c.base_model or ""),
            human_bytes(c.size_bytes),
            short_time(c.created_at),
        ]
        for c in checkpoints
    ]
    out.table(("CHECKPOINT", "TYPE", "BASE MODEL", "SIZE", "CREATED (UTC)"), rows)
    return 0


async def jobs_checkpoint_files(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """List a job's checkpoint files, or download them into a folder (resumable)."""
    project = await resolve_project(client, args.project)
    pager = client.jobs.checkpoint_files(project.id, args.job_id, page_size=args.page_size)
    if args.download is not None:
        return await download_checkpoint_files(
            out, pager, args.download, concurrency=args.concurrency
        )
    files = await pager
    if out.json_mode:
        out.json(files)
        return 0
    rows = [
        [one_line(f.relative_file_name), str(f.node_rank), human_bytes(f.size_bytes)] for f in files
    ]
    out.table(("FILE", "NODE", "SIZE"), rows)
    return 0


async def jobs_download_urls(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Print presigned URLs of a job's artifacts, one per line."""
    project = await resolve_project(client, args.project)
    urls = await client.jobs.download_urls(project.id, args.job_id)
    if out.json_mode:
        out.json(urls)
    else:
        for url in urls:
            out.line(one_line(url))
    return 0


async def jobs_capacity(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """GPU capacity for training, per GPU type (and per team)."""
    capacity = await client.jobs.capacity()
    if out.json_mode:
        out.json(capacity)
        return 0
    rows = [
        [one_line(c.gpu_type), "", str(c.usage_count), str(c.baseline), str(c.limit)]
        for c in capacity.gpu_capacities
    ] + [
        [
            one_line(c.gpu_type),
            one_line(c.team_name),
            str(c.usage_count),
            str(c.baseline),
            str(c.limit),
        ]
        for c in capacity.team_gpu_capacities or []
    ]
    out.table(("GPU", "TEAM", "IN USE", "BASELINE", "LIMIT"), rows)
    return 0


COMMANDS: dict[tuple[str, str], ClientCommand] = {
    ("projects", "list"): projects_list,
    ("projects", "upsert"): projects_upsert,
    ("projects", "retrieve"): projects_retrieve,
    ("projects", "delete"): projects_delete,
    ("projects", "cache_summary"): projects_cache_summary,
    ("jobs", "create"): jobs_create,
    ("jobs", "recreate"): jobs_recreate,
    ("jobs", "retrieve"): jobs_retrieve,
    ("jobs", "find"): jobs_find,
    ("jobs", "list"): jobs_list,
    ("jobs", "search"): jobs_search,
    ("jobs", "stop"): jobs_stop,
    ("jobs", "delete"): jobs_delete,
    ("jobs", "update"): jobs_update,
    ("jobs", "wait"): jobs_wait,
    ("jobs", "watch"): jobs_watch,
    ("jobs", "supervise"): jobs_supervise,
    ("jobs", "logs"): jobs_logs,
    ("jobs", "metrics"): jobs_metrics,
    ("jobs", "checkpoints"): jobs_checkpoints,
    ("jobs", "checkpoint_files"): jobs_checkpoint_files,
    ("jobs", "download_urls"): jobs_download_urls,
    ("jobs", "capacity"): jobs_capacity,
    ("jobs", "queue_context"): jobs_queue_context,
    ("teams", "list"): teams_list,
    ("capacity", "retrieve"): capacity_retrieve,
    ("capacity", "update"): capacity_update,
    ("sessions", "auth_codes"): sessions_auth_codes,
    ("sessions", "update"): sessions_update,
    ("sessions", "sign_ssh_key"): sessions_sign_ssh_key,
    ("artifacts", "upload_credentials"): artifacts_upload_credentials,
}
"""Commands that need a client, by ``(group, SDK method name)``."""

PREPARE: dict[tuple[str, str], Callable[[argparse.Namespace, Output], None]] = {
    ("jobs", "create"): prepare_jobs_create,
    ("jobs", "search"): prepare_jobs_search,
    ("jobs", "supervise"): prepare_jobs_supervise,
}
"""Local checks to run before the client is created, by ``(group, command)``."""
