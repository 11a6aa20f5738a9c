"""``jobs create`` and ``jobs recreate``: never a second GPU job by accident.

- A job name already in the project is adopted, not created again (``--no-adopt``
  to opt out), so re-running an interrupted command is safe.
- Ctrl-C during a batch stops starting creates and lets those in flight finish;
  a second Ctrl-C abandons them. Either way the command prints how many jobs
  exist, how many creates have an unknown outcome, and the exact command that
  resumes the batch.
- A create whose outcome is unknown says that the job may exist and how to check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from .. import (
    APIConnectionError,
    AsyncTrainingClient,
    BasetenError,
    TrainingJob,
    TrainingJobSpec,
    TrainingProject,
)
from ._exit import CommandInterrupted, OutcomeUnknownError, UsageError, exit_code_for
from ._output import JOB_COLUMNS, Output, job_details, job_rows, one_line
from ._project import resolve_project
from ._spec import numbered_specs

__all__ = ["jobs_create", "jobs_recreate", "resume_command"]

PROG = "baseten-training"
_MAX_ERROR_LINES = 10
_SECRET_FLAGS = ("--api-key",)


def resume_command(argv: Sequence[str], *, name: str | None) -> str:
    """The command line that resumes a batch: the same one, adopting what exists.

    ``--no-adopt`` is dropped (it would create the jobs again), a generated
    batch name is pinned with ``--name``, and an ``--api-key`` value is never
    echoed.

    Args:
        argv: The arguments the command was run with.
        name: The batch's base name when the CLI generated it, else None.

    Returns:
        A shell command line.
    """
    words: list[str] = []
    skip = False
    secret = False
    for word in argv:
        if skip:
            skip = False
            if secret:
                words.append("$BASETEN_API_KEY")
            continue
        if word == "--no-adopt":
            continue
        if word in _SECRET_FLAGS:
            words.append(word)
            skip = secret = True
            continue
        if any(word.startswith(f"{flag}=") for flag in _SECRET_FLAGS):
            words.append(word.partition("=")[0] + "=$BASETEN_API_KEY")
            continue
        if word == "--allow-unnamed" and name is not None:
            continue
        words.append(word)
    if name is not None:
        words += ["--name", name]
    return " ".join(w if w.endswith("$BASETEN_API_KEY") else shlex.quote(w) for w in [PROG, *words])


async def _existing_by_name(
    client: AsyncTrainingClient, project: TrainingProject
) -> dict[str, TrainingJob]:
    jobs = await client.jobs.list(project.id)
    found: dict[str, TrainingJob] = {}
    for job in sorted(jobs, key=lambda j: j.created_at, reverse=True):
        if job.name is not None:
            found[job.name] = job  # the oldest job of a name wins, as in create_many
    return found


def _check_command(project: TrainingProject) -> str:
    return f"{PROG} jobs list {shlex.quote(project.id)}"


def _show_job(out: Output, job: TrainingJob, title: str) -> None:
    if out.json_mode:
        out.json(job)
    else:
        out.details(job_details(job), title=title)


async def _create_one(
    args: argparse.Namespace,
    client: AsyncTrainingClient,
    out: Output,
    project: TrainingProject,
    spec: TrainingJobSpec,
) -> int:
    if spec.name is not None and args.adopt:
        existing = (await _existing_by_name(client, project)).get(spec.name)
        if existing is not None:
            out.note(
                f"job {one_line(spec.name)!r} already exists in project "
                f"{one_line(project.name)}: not creating another (--no-adopt to force)"
            )
            _show_job(out, existing, "existing job")
            return 0
    what = f"job {one_line(spec.name)!r}" if spec.name else "an unnamed job"
    rerun = (
        " or re-run this command: it adopts the job if it exists" if spec.name is not None else ""
    )
    try:
        job = await client.jobs.create(project.id, spec)
    except APIConnectionError as exc:
        if not exc.maybe_committed:
            raise
        raise OutcomeUnknownError(
            f"the create's outcome is unknown ({one_line(str(exc))}): {what} may exist; "
            f"check with: {_check_command(project)}{rerun}"
        ) from exc
    except asyncio.CancelledError:
        out.note(
            f"interrupted while creating: {what} may exist; "
            f"check with: {_check_command(project)}{rerun}"
        )
        raise
    _show_job(out, job, "created job")
    return 0


class _Batch:
    """Counts of a running batch, and the Ctrl-C handling around it."""

    def __init__(self, specs: list[TrainingJobSpec], out: Output) -> None:
        self.specs = specs
        self.out = out
        self.pulled = 0
        self.done = 0
        self.failed = 0
        self.stopping = False
        self.task: asyncio.Task[list[TrainingJob | BasetenError]] | None = None

    async def feed(self) -> AsyncIterator[TrainingJobSpec]:
        for spec in self.specs:
            if self.stopping:
                return
            self.pulled += 1
            yield spec

    def on_sigint(self) -> None:
        if not self.stopping:
            self.stopping = True
            in_flight = self.pulled - self.done - self.failed
            self.out.note(
                f"interrupted: starting no more creates; waiting for {in_flight} in flight "
                "(Ctrl-C again to stop waiting)"
            )
        elif self.task is not None:
            self.task.cancel()

    @contextlib.contextmanager
    def sigint_handled(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self.on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            yield
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            if self.stopping:
                # Already shutting down on the user's Ctrl-C: a further one must not
                # cut off the summary and resume command about to be printed.
                signal.signal(signal.SIGINT, signal.SIG_IGN)


def _job_line(index: int, spec: TrainingJobSpec, result: TrainingJob | BasetenError) -> Any:
    if isinstance(result, TrainingJob):
        return {"event": "job", "index": index, "name": spec.name, "job": result}
    return {
        "event": "error",
        "index": index,
        "name": spec.name,
        "type": type(result).__name__,
        "error": one_line(str(result)),
        "maybe_created": isinstance(result, APIConnectionError) and result.maybe_committed,
    }


async def _create_batch(
    args: argparse.Namespace,
    client: AsyncTrainingClient,
    out: Output,
    project: TrainingProject,
    spec: TrainingJobSpec,
) -> int:
    generated = spec.name is None
    specs = numbered_specs(spec, args.count)
    base_name = specs[0].name.rsplit("-", 1)[0] if generated and specs[0].name else None
    before = {job.id for job in (await _existing_by_name(client, project)).values()}
    batch = _Batch(specs, out)
    resume = resume_command(args.argv, name=base_name)
    with out.progress("creating jobs", total=len(specs)) as bar:

        def on_progress(done: int, failed: int, total: int | None) -> None:
            batch.done, batch.failed = done, failed
            bar(done, failed, len(specs))
            if out.json_mode:
                out.json_line(
                    {"event": "progress", "done": done, "failed": failed, "total": len(specs)}
                )

        batch.task = asyncio.ensure_future(
            client.jobs.create_many(
                project.id,
                batch.feed(),
                concurrency=args.concurrency,
                on_progress=on_progress,
                adopt_existing=args.adopt,
            )
        )
        with batch.sigint_handled():
            try:
                results = await batch.task
            except asyncio.CancelledError:
                if not batch.task.cancelled():
                    raise  # this command itself was cancelled
                unknown = batch.pulled - batch.done - batch.failed
                summary = {
                    "event": "interrupted",
                    "created_or_adopted": batch.done,
                    "failed": batch.failed,
                    "unknown": unknown,
                    "not_started": len(specs) - batch.pulled,
                    "resume": resume,
                }
                if out.json_mode:
                    out.json_line(summary)
                raise CommandInterrupted(
                    f"interrupted: {batch.done} of {len(specs)} jobs created or adopted, "
                    f"{batch.failed} failed, {unknown} unknown (those creates may have "
                    f"started jobs), {len(specs) - batch.pulled} not started; resume with: "
                    f"{resume}"
                ) from None
    attempted = specs[: len(results)]
    jobs = [r for r in results if isinstance(r, TrainingJob)]
    adopted = sum(1 for job in jobs if job.id in before)
    failures = [
        (s, r) for s, r in zip(attempted, results, strict=True) if isinstance(r, BasetenError)
    ]
    not_started = len(specs) - len(results)
    if out.json_mode:
        for index, (s, r) in enumerate(zip(attempted, results, strict=True)):
            out.json_line(_job_line(index, s, r))
        out.json_line(
            {
                "event": "summary",
                "requested": len(specs),
                "created": len(jobs) - adopted,
                "adopted": adopted,
                "failed": len(failures),
                "not_started": not_started,
                **({"resume": resume} if not_started or failures else {}),
            }
        )
    else:
        out.table(JOB_COLUMNS, job_rows(jobs), status_column=2)
    adopted_text = f" ({adopted} already existed, adopted)" if adopted else ""
    out.note(
        f"created {len(jobs) - adopted} of {len(specs)} jobs{adopted_text}, {len(failures)} failed"
    )
    for spec_item, error in failures[:_MAX_ERROR_LINES]:
        out.note(f"error: {one_line(spec_item.name or '?')}: {one_line(str(error))}")
    if len(failures) > _MAX_ERROR_LINES:
        out.note(f"error: ... and {len(failures) - _MAX_ERROR_LINES} more failures")
    if batch.stopping:
        raise CommandInterrupted(
            f"interrupted: {len(jobs)} of {len(specs)} jobs created or adopted, "
            f"{len(failures)} failed, 0 unknown, {not_started} not started; "
            f"resume with: {resume}"
        )
    if failures:
        out.note(f"to retry the failed ones: {resume}")
        return exit_code_for(failures[0][1])
    return 0


async def jobs_create(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Create one job, or ``--count`` jobs through ``create_many``."""
    spec: TrainingJobSpec = args.job_spec
    project = await resolve_project(client, args.project)
    if args.count is None:
        return await _create_one(args, client, out, project, spec)
    return await _create_batch(args, client, out, project, spec)


def check_create_names(args: argparse.Namespace, spec: TrainingJobSpec, out: Output) -> None:
    """Refuse (batches) or warn about (single jobs) creating without a name.

    Args:
        args: Parsed arguments.
        spec: The spec.
        out: Where warnings go.

    Raises:
        UsageError: A batch without a name and without ``--allow-unnamed``.
    """
    if spec.name is not None or args.allow_unnamed:
        return
    if args.count is not None:
        raise UsageError(
            "--count needs --name NAME (jobs are named NAME-0001, ...) so that a re-run can "
            "adopt them; or pass --allow-unnamed for generated names"
        )
    out.note(
        "warning: this job has no name: if the response is lost it cannot be looked up, "
        "and running this command again starts another job (--name NAME, or "
        "--allow-unnamed to silence this)"
    )


async def jobs_recreate(args: argparse.Namespace, client: AsyncTrainingClient, out: Output) -> int:
    """Start a new job with an existing job's configuration."""
    project = await resolve_project(client, args.project)
    source = await client.jobs.retrieve(project.id, args.job_id)
    try:
        job = await client.jobs.recreate(project.id, args.job_id)
    except APIConnectionError as exc:
        if not exc.maybe_committed:
            raise
        raise OutcomeUnknownError(
            f"the recreate's outcome is unknown ({one_line(str(exc))}): a new job may exist; "
            f"check with: {_check_command(project)}"
        ) from exc
    _show_job(out, job, "created job")
    if source.name:
        out.note(
            f"note: the new job has the same name as {one_line(source.id)} "
            f"({one_line(source.name)!r}); the API offers no way to rename it"
        )
    return 0
