"""The ``projects`` and ``jobs`` commands: thin wrappers over the SDK's resources."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from .._client import AsyncTrainingClient
from .._errors import BasetenError
from ..models import JobStatus, LogLine, TrainingJob, TrainingJobSpec
from ._exit import JobOutcomeError, exit_code_for
from ._output import (
    JOB_COLUMNS,
    PROJECT_COLUMNS,
    Output,
    format_log_line,
    job_details,
    job_rows,
    one_line,
    project_details,
    project_rows,
    short_status,
)
from ._spec import SpecFlags, build_spec, load_spec_file, numbered_specs, parse_env

__all__ = ["COMMANDS", "PREPARE", "ClientCommand", "status_value"]

ClientCommand = Callable[[argparse.Namespace, AsyncTrainingClient, Output], Awaitable[int]]
"""A command that talks to the API: ``(args, client, out) -> exit code``."""

_MAX_ERROR_LINES = 10


def status_value(text: str) -> str:
    """Accept ``running`` or ``RUNNING`` for ``TRAINING_JOB_RUNNING``.

    Args:
        text: A status as typed on the command line.

    Returns:
        The status as the API spells it.
    """
    upper = text.strip().upper()
    return upper if upper.startswith("TRAINING_JOB_") else f"TRAINING_JOB_{upper}"


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
    project = await client.projects.upsert(args.name, team_id=args.team_id)
    if out.json_mode:
        out.json(project)
    else:
        out.details(project_details(project))
    return 0


async def projects_get(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Show one project."""
    project = await client.projects.retrieve(args.project_id)
    if out.json_mode:
        out.json(project)
    else:
        out.details(project_details(project))
    return 0


async def projects_delete(
    args: argparse.Namespace, client: AsyncTrainingClient, out: Output
) -> int:
    """Delete a project."""
    tombstone = await client.projects.delete(args.project_id)
    if out.json_mode:
        out.json(tombstone)
    else:
        out.line(f"deleted project {one_line(tombstone.id)}")
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


def prepare_jobs_create(args: argparse.Namespace) -> None:
    """Read and validate the spec before any client exists, so usage errors come first.

    Args:
        args: Parsed arguments; ``args.job_spec`` is set.

    Raises:
        UsageError: The spec file or flags are invalid.
    """
    file_spec = load_spec_file(args.spec) if args.spec else None
    args.job_spec = build_spec(file_spec, _spec_flags(args))


async def jobs_create(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Create one job, or ``--count`` jobs through ``create_many``."""
    spec: TrainingJobSpec = args.job_spec
    if args.count is None:
        job = await client.jobs.create(args.project_id, spec)
        _show_job(out, job, title="created job")
        return 0
    specs = numbered_specs(spec, args.count)
    with out.progress("creating jobs", total=len(specs)) as on_progress:
        results = await client.jobs.create_many(
            args.project_id, specs, concurrency=args.concurrency, on_progress=on_progress
        )
    jobs = [r for r in results if isinstance(r, TrainingJob)]
    failures = [
        (spec, r) for spec, r in zip(specs, results, strict=True) if isinstance(r, BasetenError)
    ]
    if out.json_mode:
        errors: list[dict[str, Any]] = [
            {"name": s.name, "error": one_line(str(e)), "type": type(e).__name__}
            for s, e in failures
        ]
        out.json({"jobs": jobs, "errors": errors})
    else:
        out.table(JOB_COLUMNS, job_rows(jobs), status_column=2)
        out.note(f"created {len(jobs)} of {len(specs)} jobs, {len(failures)} failed")
    if not failures:
        return 0
    for spec_item, error in failures[:_MAX_ERROR_LINES]:
        out.note(f"error: {one_line(spec_item.name or '?')}: {one_line(str(error))}")
    if len(failures) > _MAX_ERROR_LINES:
        out.note(f"error: ... and {len(failures) - _MAX_ERROR_LINES} more failures")
    return exit_code_for(failures[0][1])


async def jobs_recreate(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Start a new job with an existing job's configuration."""
    job = await client.jobs.recreate(args.project_id, args.job_id)
    _show_job(out, job, title="created job")
    return 0


async def jobs_get(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Show one job."""
    _show_job(out, await client.jobs.retrieve(args.project_id, args.job_id))
    return 0


async def jobs_list(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """List a project's jobs."""
    _show_jobs(out, await client.jobs.list(args.project_id))
    return 0


async def jobs_search(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Search jobs across projects."""
    statuses = [status_value(s) for s in args.status] if args.status else None
    jobs = await client.jobs.search(
        project_id=args.project_id, job_id=args.job_id, statuses=statuses, order=args.order
    )
    _show_jobs(out, jobs)
    return 0


async def jobs_stop(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Stop a running job."""
    _show_job(out, await client.jobs.stop(args.project_id, args.job_id), title="stopped job")
    return 0


async def jobs_delete(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Delete a job."""
    tombstone = await client.jobs.delete(args.project_id, args.job_id)
    if out.json_mode:
        out.json(tombstone)
    else:
        out.line(f"deleted job {one_line(tombstone.id)}")
    return 0


async def jobs_wait(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Wait for a job to finish; exit 1 unless it completed."""

    def changed(job: TrainingJob) -> None:
        out.note(f"{one_line(job.id)}: {short_status(job.current_status)}")

    job = await client.jobs.wait(
        args.project_id,
        args.job_id,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        on_status_change=None if out.json_mode else changed,
    )
    _show_job(out, job)
    if job.current_status != JobStatus.COMPLETED:
        raise JobOutcomeError(
            f"job {one_line(job.id)} finished as {short_status(job.current_status)}"
        )
    return 0


async def jobs_logs(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Print a job's logs; with ``--follow``, until the job finishes."""
    lines = client.jobs.logs(
        args.project_id,
        args.job_id,
        min_level=args.min_level,
        follow=args.follow,
        poll_interval=args.poll_interval,
    )
    collected: list[LogLine] = []
    async for line in lines:
        if out.json_mode:
            collected.append(line)
        else:
            out.line(format_log_line(line))
    if out.json_mode:
        out.json(collected)  # JSON escapes control characters: the data stays exact
    return 0


COMMANDS: dict[tuple[str, str], ClientCommand] = {
    ("projects", "list"): projects_list,
    ("projects", "upsert"): projects_upsert,
    ("projects", "get"): projects_get,
    ("projects", "delete"): projects_delete,
    ("jobs", "create"): jobs_create,
    ("jobs", "recreate"): jobs_recreate,
    ("jobs", "get"): jobs_get,
    ("jobs", "list"): jobs_list,
    ("jobs", "search"): jobs_search,
    ("jobs", "stop"): jobs_stop,
    ("jobs", "delete"): jobs_delete,
    ("jobs", "wait"): jobs_wait,
    ("jobs", "logs"): jobs_logs,
}
"""Commands that need a client, by ``(group, command)``."""

PREPARE: dict[tuple[str, str], Callable[[argparse.Namespace], None]] = {
    ("jobs", "create"): prepare_jobs_create,
}
"""Local checks to run before the client is created, by ``(group, command)``."""
