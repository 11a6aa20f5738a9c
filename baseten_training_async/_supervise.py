"""``supervise``: launch jobs once, watch them, relaunch the preempted from their checkpoints.

Each spec is a *run*. Its first attempt is the spec itself, launched through
``create_many(..., adopt_existing=True)``; a run whose attempt ends in one of
``relaunch_on`` is launched again as ``<name>-attempt-2``, ``-attempt-3``, ...
up to ``max_attempts``, loading the latest checkpoint any earlier attempt
wrote (``runtime.load_checkpoint_config``). Each relaunch is an exactly-once
create (looked up by its name when its outcome is unknown).

Attempt names make the whole call idempotent: it starts by listing the
project once and takes every job named after a spec as that spec's attempt,
so a re-run after a crash launches nothing for a finished run, follows an
attempt still running, and relaunches only where the crash came between an
attempt's end and its successor's launch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from msgspec import UNSET

from ._core import Core
from ._errors import BasetenError, InvalidInputError
from ._fanout import run_create_many
from ._reconcile import Claims, Reconciler
from ._watch import JobEvent, StatusPoller, Watch
from ._wire import CREATE_JOB, JOB_CHECKPOINTS, LIST_JOBS
from .models import (
    BasetenNamedCheckpoint,
    Checkpoint,
    JobStatus,
    LoadCheckpointConfig,
    Runtime,
    TrainingJob,
    TrainingJobSpec,
)

__all__ = ["SupervisedAttempt", "SupervisedRun", "attempt_name", "run_supervise"]


def attempt_name(name: str, number: int) -> str:
    """The job name of a run's ``number``-th attempt: the spec's name, then ``-attempt-N``."""
    return name if number == 1 else f"{name}-attempt-{number}"


@dataclass(slots=True)
class SupervisedAttempt:
    """One launch of a supervised run.

    Attributes:
        number: 1 for the spec as given, 2 for ``<name>-attempt-2``, ...
        job: The job as last seen.
        checkpoints: The checkpoints it wrote (read once it ended).
        resumed_from: The checkpoint it was launched to load, if any (None for an
            attempt a re-run found by name: the API does not return a job's spec).
        resumed_from_job: The id of the job that wrote ``resumed_from``.
    """

    number: int
    job: TrainingJob
    checkpoints: list[Checkpoint] = field(default_factory=list)
    resumed_from: str | None = None
    resumed_from_job: str | None = None

    @property
    def name(self) -> str:
        """The job's name."""
        return self.job.name or ""

    @property
    def status(self) -> str:
        """The job's status as last seen."""
        return self.job.current_status


@dataclass(slots=True)
class SupervisedRun:
    """Everything ``supervise`` did for one spec.

    Attributes:
        name: The spec's name (the first attempt's job name).
        attempts: Every attempt, first first.
        error: Why the run stopped early (a launch that failed), if it did.
    """

    name: str
    attempts: list[SupervisedAttempt] = field(default_factory=list)
    error: BasetenError | None = None

    @property
    def job(self) -> TrainingJob | None:
        """The latest attempt's job."""
        return self.attempts[-1].job if self.attempts else None

    @property
    def status(self) -> str | None:
        """The latest attempt's status: the run's final status once it is done."""
        return self.attempts[-1].status if self.attempts else None

    @property
    def completed(self) -> bool:
        """Whether the run ended ``TRAINING_JOB_COMPLETED``."""
        return self.status == JobStatus.COMPLETED

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint of every attempt, oldest attempt first."""
        return [c for attempt in self.attempts for c in attempt.checkpoints]


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _latest(checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    dated = [(d, i, c) for i, c in enumerate(checkpoints) if (d := _parse(c.created_at))]
    if dated:
        return max(dated, key=lambda item: (item[0], item[1]))[2]
    return checkpoints[-1] if checkpoints else None


def _resume_point(run: SupervisedRun) -> tuple[Checkpoint, str] | None:
    """The latest checkpoint any attempt of ``run`` wrote, with its job id."""
    for attempt in reversed(run.attempts):
        latest = _latest(attempt.checkpoints)
        if latest is not None:
            return latest, attempt.job.id
    return None


def _attempt_spec(
    spec: TrainingJobSpec, number: int, resume: tuple[Checkpoint, str] | None
) -> TrainingJobSpec:
    name = attempt_name(spec.name or "", number)
    if resume is None:
        return msgspec.structs.replace(spec, name=name)
    checkpoint, job_id = resume
    runtime = spec.runtime or Runtime()
    given = runtime.load_checkpoint_config
    load = LoadCheckpointConfig(
        enabled=True,
        download_folder=UNSET if given is None else given.download_folder,
        checkpoints=[
            BasetenNamedCheckpoint(checkpoint_name=checkpoint.checkpoint_id, job_id=job_id)
        ],
    )
    runtime = msgspec.structs.replace(runtime, load_checkpoint_config=load)
    return msgspec.structs.replace(spec, name=name, runtime=runtime)


async def run_supervise(
    core: Core,
    reconciler: Reconciler,
    poller: StatusPoller,
    project_id: str,
    specs: Sequence[TrainingJobSpec],
    *,
    max_attempts: int,
    resume_from_checkpoint: bool,
    relaunch_on: Collection[str],
    on_event: Callable[[JobEvent], object] | None,
    concurrency: int,
    poll_interval: float | None,
) -> list[SupervisedRun]:
    """Launch, watch and relaunch ``specs``; one `SupervisedRun` per spec, in order."""
    names = [spec.name for spec in specs]
    for index, name in enumerate(names):
        if not name:
            raise InvalidInputError(f"specs[{index}].name", "supervised specs need a name")
    if len(set(names)) != len(names):
        raise InvalidInputError("specs", "names must be unique")
    path = LIST_JOBS.path(project_id)
    listing = (await core.request(LIST_JOBS, path)).value.training_jobs
    claims = Claims({job.id for job in listing})
    by_name: dict[str, TrainingJob] = {}
    for job in sorted(listing, key=lambda j: j.created_at, reverse=True):
        if job.name is not None:
            by_name[job.name] = job  # the oldest job of a name is the attempt
    runs = [SupervisedRun(name or "") for name in names]
    for run in runs:
        for number in range(1, max_attempts + 1):
            found = by_name.get(attempt_name(run.name, number))
            if found is None:
                break
            run.attempts.append(SupervisedAttempt(number, found))
    fresh = [i for i, run in enumerate(runs) if not run.attempts]
    if fresh:
        created = await run_create_many(
            core,
            reconciler,
            project_id,
            [specs[i] for i in fresh],
            check=lambda spec: spec,
            concurrency=concurrency,
            return_exceptions=True,
            on_progress=None,
            adopt_existing=True,
        )
        for index, result in zip(fresh, created, strict=True):
            if isinstance(result, TrainingJob):
                claims.ids.add(result.id)
                runs[index].attempts.append(SupervisedAttempt(1, result))
            else:
                runs[index].error = result
    supervisor = _Supervisor(
        core,
        reconciler,
        project_id,
        specs,
        runs,
        claims,
        max_attempts=max_attempts,
        resume=resume_from_checkpoint,
        relaunch_on=frozenset(relaunch_on),
        on_event=on_event,
        slots=asyncio.Semaphore(concurrency),
    )
    await supervisor.run(poller, poll_interval)
    return runs


class _Supervisor:
    """The event loop of one ``supervise`` call."""

    def __init__(
        self,
        core: Core,
        reconciler: Reconciler,
        project_id: str,
        specs: Sequence[TrainingJobSpec],
        runs: list[SupervisedRun],
        claims: Claims,
        *,
        max_attempts: int,
        resume: bool,
        relaunch_on: frozenset[str],
        on_event: Callable[[JobEvent], object] | None,
        slots: asyncio.Semaphore,
    ) -> None:
        self.core = core
        self.reconciler = reconciler
        self.project_id = project_id
        self.specs = specs
        self.runs = runs
        self.claims = claims
        self.max_attempts = max_attempts
        self.resume = resume
        self.relaunch_on = relaunch_on
        self.on_event = on_event
        self.slots = slots
        self.current: dict[str, int] = {}  # job id of each run's latest attempt -> run index
        self.busy = 0  # attempts ending or launching right now

    async def run(self, poller: StatusPoller, poll_interval: float | None) -> None:
        for index, run in enumerate(self.runs):
            if run.attempts:
                self.current[run.attempts[-1].job.id] = index
        if not self.current:
            return
        with poller.subscribe(
            self.core, self.project_id, list(self.current), poll_interval=poll_interval
        ) as watch:
            async with asyncio.TaskGroup() as group:
                while self.current or self.busy:
                    item = await watch.get()
                    if not isinstance(item, JobEvent):
                        continue
                    run_index = self.current.get(item.job.id)
                    if run_index is None:
                        continue
                    index = run_index
                    self.runs[index].attempts[-1].job = item.job
                    if self.on_event is not None:
                        self.on_event(item)
                    if item.job.is_terminal:
                        del self.current[item.job.id]
                        self.busy += 1
                        group.create_task(self._ended(index, watch))

    async def _ended(self, index: int, watch: Watch) -> None:
        """Record an attempt's checkpoints and relaunch the run if it should be."""
        run = self.runs[index]
        attempt = run.attempts[-1]
        try:
            async with self.slots:
                attempt.checkpoints = await self._checkpoints(attempt.job)
                if attempt.status not in self.relaunch_on or attempt.number >= self.max_attempts:
                    return
                number = attempt.number + 1
                resume = _resume_point(run) if self.resume else None
                spec = _attempt_spec(self.specs[index], number, resume)
                job = await self.reconciler.create(
                    self.core,
                    self.project_id,
                    CREATE_JOB,
                    CREATE_JOB.path(self.project_id),
                    spec=spec,
                    headers=None,
                    claims=self.claims,
                )
            name, source = (None, None) if resume is None else (resume[0].checkpoint_id, resume[1])
            run.attempts.append(SupervisedAttempt(number, job, [], name, source))
            self.current[job.id] = index
            watch.follow([job.id])
        except BasetenError as exc:
            run.error = exc
        finally:
            self.busy -= 1
            if not self.current and not self.busy:
                watch.nudge()  # the loop may be waiting for news that will not come

    async def _checkpoints(self, job: TrainingJob) -> list[Checkpoint]:
        path = JOB_CHECKPOINTS.path(self.project_id, job.id)
        return (await self.core.request(JOB_CHECKPOINTS, path)).value.checkpoints
