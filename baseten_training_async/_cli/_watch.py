"""``jobs wait``, ``jobs watch`` and ``jobs supervise``: following jobs on the shared poller.

Every command here polls through the client's one listing per project per
interval (adaptive unless ``--poll-interval`` is given). With ``--json`` each
status change is one JSON object per line, flushed as it is seen.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import (
    AsyncTrainingClient,
    FinishedJob,
    JobEvent,
    JobStatus,
    SupervisedRun,
    TrainingJob,
    TrainingJobSpec,
)
from ._exit import JobOutcomeError, UsageError
from ._output import (
    Output,
    format_log_line,
    job_details,
    one_line,
    short_status,
    status_style,
)
from ._project import resolve_project
from ._spec import SpecFlags, build_spec, load_spec_file, numbered_specs

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["jobs_supervise", "jobs_wait", "jobs_watch", "prepare_jobs_supervise"]

_WATCH_COLUMNS = ("ID", "NAME", "STATUS", "PREVIOUS", "SEEN (UTC)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_record(event: JobEvent) -> dict[str, Any]:
    """One status change as a JSON line: the job's id, name, statuses, when, and the job."""
    job = event.job
    return {
        "event": "status",
        "job_id": job.id,
        "name": job.name,
        "status": job.current_status,
        "previous": event.previous,
        "time": _now(),
        "job": job,
    }


def _event_text(event: JobEvent) -> str:
    job = event.job
    previous = "new" if event.previous is None else short_status(event.previous)
    return (
        f"{_now()[11:19]}  {one_line(job.id)}  {one_line(job.name or '-')}  "
        f"{previous} -> {short_status(job.current_status)}"
    )


# --- jobs wait ---------------------------------------------------------------------------


async def jobs_wait(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Wait for a job to finish; exit 1 unless it completed."""
    project = await resolve_project(client, args.project)

    def changed(job: TrainingJob) -> None:
        out.note(f"{one_line(job.id)}: {short_status(job.current_status)}")

    job: FinishedJob = await client.jobs.wait(
        project.id,
        args.job_id,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        on_status_change=None if out.json_mode else changed,
        on_timeout=args.on_timeout,
        max_pending=args.max_pending,
        max_running=args.max_running,
        log_tail=args.log_tail,
    )
    if out.json_mode:
        out.json(job)
    else:
        out.details(job_details(job))
        if job.log_tail:
            out.note(f"last {len(job.log_tail)} log lines of {one_line(job.id)}:")
            for line in job.log_tail:
                out.note(format_log_line(line))
    if job.current_status != JobStatus.COMPLETED:
        why = f" (stopped: --{job.stopped_for.replace('_', '-')} passed)" if job.stopped_for else ""
        raise JobOutcomeError(
            f"job {one_line(job.id)} finished as {short_status(job.current_status)}{why}"
        )
    return 0


# --- jobs watch --------------------------------------------------------------------------


class _Board:
    """The latest status of every watched job, in the order they were first seen."""

    def __init__(self) -> None:
        self.rows: dict[str, list[str]] = {}

    def update(self, event: JobEvent) -> None:
        job = event.job
        self.rows[job.id] = [
            one_line(job.id),
            one_line(job.name or "-"),
            job.current_status,
            "" if event.previous is None else short_status(event.previous),
            _now()[:19].replace("T", " "),
        ]

    def render(self, title: str) -> RenderableType:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold", title_justify="left")
        for name in _WATCH_COLUMNS:
            table.add_column(name, overflow="fold")
        for row in self.rows.values():
            status = row[2]
            table.add_row(
                Text(row[0]),
                Text(row[1]),
                Text(short_status(status), style=status_style(status)),
                Text(row[3]),
                Text(row[4]),
            )
        return table


@contextmanager
def _live_board(out: Output, title: str) -> Iterator[Any]:
    """A callback drawing each event: a live rich table on terminals, else plain lines."""
    console = None if out.json_mode else out.console
    if console is None:

        def plain(event: JobEvent) -> None:
            if out.json_mode:
                out.json_line(_event_record(event))
            else:
                out.line(_event_text(event))

        yield plain
        return
    from rich.live import Live

    board = _Board()
    with Live(board.render(title), console=console, auto_refresh=False) as live:

        def draw(event: JobEvent) -> None:
            board.update(event)
            live.update(board.render(title), refresh=True)

        yield draw


async def jobs_watch(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Show jobs' statuses as they change, until the listed jobs finish (or Ctrl-C)."""
    project = await resolve_project(client, args.project)
    job_ids: list[str] | None = list(args.job_ids) if args.job_ids else None
    if job_ids is None:
        out.note(f"watching every job of project {one_line(project.name)} (Ctrl-C to stop)")
    title = f"jobs of {one_line(project.name)}"
    last: dict[str, str] = {}
    with _live_board(out, title) as show:
        events = client.jobs.watch(project.id, job_ids=job_ids, poll_interval=args.poll_interval)
        async for event in events:
            last[event.job.id] = event.job.current_status
            show(event)
    counts: dict[str, int] = {}
    for status in last.values():
        counts[short_status(status)] = counts.get(short_status(status), 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out.note(f"all {len(last)} watched jobs finished: {summary or 'none'}")
    return 0


# --- jobs supervise ----------------------------------------------------------------------


def prepare_jobs_supervise(args: argparse.Namespace, out: Output) -> None:
    """Build the ``--count`` named specs before any client exists, as ``jobs create`` does.

    Args:
        args: Parsed arguments; ``args.job_specs`` and ``args.relaunch_statuses`` are set.
        out: Unused.

    Raises:
        UsageError: The spec file is invalid, has no name, or a status is unknown.
    """
    from ._commands import status_value

    spec = build_spec(load_spec_file(args.spec_file), SpecFlags(name=args.name))
    if spec.name is None:
        raise UsageError(
            "jobs supervise needs a name: pass --name PREFIX or set name in the spec file "
            "(attempts are found again by name)"
        )
    args.job_specs = numbered_specs(spec, args.count)
    statuses = args.relaunch_on or ["PREEMPTED"]
    args.relaunch_statuses = [status_value(s) for s in statuses]


def _run_record(run: SupervisedRun) -> dict[str, Any]:
    return {
        "event": "run",
        "name": run.name,
        "status": run.status,
        "completed": run.completed,
        "attempts": [
            {
                "number": a.number,
                "name": a.name,
                "job_id": a.job.id,
                "status": a.status,
                "checkpoints": len(a.checkpoints),
                "resumed_from": a.resumed_from,
            }
            for a in run.attempts
        ],
        "error": None if run.error is None else one_line(str(run.error)),
    }


async def jobs_supervise(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Launch ``--count`` jobs, see them through, relaunch preempted ones (exit 1 on a loss)."""
    specs: list[TrainingJobSpec] = args.job_specs
    project = await resolve_project(client, args.project)

    def on_event(event: JobEvent) -> None:
        if out.json_mode:
            out.json_line(_event_record(event))
        else:
            out.line(_event_text(event))

    runs = await client.jobs.supervise(
        project.id,
        specs,
        max_attempts=args.max_attempts,
        resume_from_checkpoint=args.resume,
        relaunch_on=args.relaunch_statuses,
        on_event=on_event,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
    )
    completed = sum(1 for run in runs if run.completed)
    relaunched = sum(max(0, len(run.attempts) - 1) for run in runs)
    if out.json_mode:
        for run in runs:
            out.json_line(_run_record(run))
        out.json_line(
            {
                "event": "summary",
                "runs": len(runs),
                "completed": completed,
                "relaunches": relaunched,
            }
        )
    else:
        rows = [
            [
                one_line(run.name),
                str(len(run.attempts)),
                short_status(run.status or "-"),
                one_line(run.job.id if run.job else "-"),
                one_line(run.job.name or "-") if run.job else "-",
            ]
            for run in runs
        ]
        out.table(("RUN", "ATTEMPTS", "STATUS", "LAST JOB", "LAST NAME"), rows, status_column=2)
    out.note(f"{completed} of {len(runs)} runs completed, {relaunched} relaunches")
    for run in runs:
        if run.error is not None:
            out.note(f"error: {one_line(run.name)}: {one_line(str(run.error))}")
    if completed != len(runs):
        raise JobOutcomeError(f"{len(runs) - completed} of {len(runs)} runs did not complete")
    return 0
