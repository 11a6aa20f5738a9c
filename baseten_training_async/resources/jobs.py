"""``client.jobs``: create, observe, control and clean up training jobs."""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, overload

from .. import _wire as wire
from .._codec import has_control_characters
from .._errors import BasetenError, InvalidInputError, NotFoundError
from .._fanout import ProgressCallback, run_create_many
from .._pagination import AsyncPager, log_pages, offset_token_pages, single_page
from .._supervise import SupervisedRun, run_supervise
from .._watch import (
    JobEvent,
    Limits,
    ReturnWhen,
    WaitManyResult,
    wait_job,
    wait_jobs,
    watch_jobs,
)
from ..models import (
    AvailabilityModelValue,
    Checkpoint,
    CheckpointFile,
    FinishedJob,
    JobMetrics,
    JobStatus,
    JobTombstone,
    LogLevelValue,
    LogLine,
    QueueContext,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
)
from ._base import Resource, checked_struct
from .sessions import SessionsResource

__all__ = ["JobsResource", "SpecInput", "TimePoint"]

SpecInput = TrainingJobSpec | Mapping[str, Any]
"""A spec as a model or as a plain dict (e.g. copied from the API docs)."""

TimePoint = datetime | int
"""A point in time: an aware ``datetime``, or integer epoch milliseconds."""


def _millis(field: str, value: TimePoint | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(field, "datetime must be timezone-aware")
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInputError(field, "must be an aware datetime or epoch milliseconds (int >= 0)")


def _idempotency_headers(key: str | None) -> dict[str, str] | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or " " in key or has_control_characters(key):
        raise InvalidInputError(
            "idempotency_key", "must be a non-empty string of visible characters"
        )
    return {"Idempotency-Key": key}


def check_spec(spec: SpecInput) -> TrainingJobSpec:
    """Validate a spec (a model or a dict of one)."""
    return checked_struct("spec", spec, TrainingJobSpec)


class JobsResource(Resource):
    """Everything about training jobs."""

    __slots__ = ()

    async def create(
        self, project_id: str, spec: SpecInput, *, idempotency_key: str | None = None
    ) -> TrainingJob:
        """Start a training job. Never starts it twice.

        If the response is lost after the request was sent, the job is looked
        up by ``spec.name`` rather than sent again; see the reconciliation
        guide. Without a name such a failure raises
        ``APIConnectionError(maybe_committed=True)``.

        Args:
            project_id: The project to run in.
            spec: The job, as a `TrainingJobSpec` or a dict of one.
            idempotency_key: Sent as ``Idempotency-Key``, the same on every attempt.

        Raises:
            InvalidInputError: The spec is invalid; the message names the field.
        """
        path = wire.CREATE_JOB.path(project_id)
        return await self._reconciler.create(
            self._core,
            project_id,
            wire.CREATE_JOB,
            path,
            spec=check_spec(spec),
            headers=_idempotency_headers(idempotency_key),
            claims=None,
        )

    async def recreate(
        self, project_id: str, job_id: str, *, idempotency_key: str | None = None
    ) -> TrainingJob:
        """Start a new job with the configuration of an existing one.

        Like `create`, never resent blindly: when the outcome is unknown,
        the new job is looked for under the original job's name; if that job
        has no name, ``APIConnectionError(maybe_committed=True)`` is raised.
        """
        path = wire.RECREATE_JOB.path(project_id, job_id)
        return await self._reconciler.create(
            self._core,
            project_id,
            wire.RECREATE_JOB,
            path,
            spec=None,
            headers=_idempotency_headers(idempotency_key),
            claims=None,
            source_job_id=job_id,
        )

    @overload
    async def create_many(
        self,
        project_id: str,
        specs: Iterable[SpecInput] | AsyncIterable[SpecInput],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[True] = ...,
        on_progress: ProgressCallback | None = ...,
        adopt_existing: bool = ...,
    ) -> builtins.list[TrainingJob | BasetenError]: ...

    @overload
    async def create_many(
        self,
        project_id: str,
        specs: Iterable[SpecInput] | AsyncIterable[SpecInput],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False],
        on_progress: ProgressCallback | None = ...,
        adopt_existing: bool = ...,
    ) -> builtins.list[TrainingJob]: ...

    async def create_many(
        self,
        project_id: str,
        specs: Iterable[SpecInput] | AsyncIterable[SpecInput],
        *,
        concurrency: int = 32,
        return_exceptions: bool = True,
        on_progress: ProgressCallback | None = None,
        adopt_existing: bool = False,
    ) -> builtins.list[TrainingJob | BasetenError] | builtins.list[TrainingJob]:
        """Create many jobs with a fixed pool of workers; results in input order.

        Each named spec is created exactly once even when responses are lost:
        the project is listed once when the batch starts, and a job that
        appears under a spec's name afterwards is that spec's job.

        Args:
            project_id: The project to run in.
            specs: Any iterable or async iterable of specs; read lazily.
            concurrency: Workers; the client's ``max_concurrency`` still applies.
            return_exceptions: Put each failure in its slot. When False, the
                first failure stops new creates; those in flight finish (so no
                job the server made is lost), then `CreateManyError` is raised
                carrying every result; the list returned then holds only jobs.
            on_progress: Called as ``on_progress(done, failed, total)``;
                ``total`` is None until the input is exhausted.
            adopt_existing: Return the existing job for a spec whose name a job
                in the project already has, instead of creating another. Makes a
                re-run of a batch (after a crash) safe; with a shared coordinator
                (``RedisCoordinator``), so are batches of several processes over
                the same names at the same time: each name is created under a lease.

        Raises:
            CreateManyError: The batch stopped early (a failure with
                ``return_exceptions=False``, or ``on_progress`` or ``specs``
                raised); in-flight creates finished first and
                ``.results``/``.jobs`` hold every outcome.
        """
        wire.LIST_JOBS.path(project_id)  # refuse a bad id before anything is read
        return await run_create_many(
            self._core,
            self._reconciler,
            project_id,
            specs,
            check=check_spec,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
            adopt_existing=adopt_existing,
        )

    async def retrieve(self, project_id: str, job_id: str) -> TrainingJob:
        """Look up one job. Idempotent."""
        job, _ = await self._retrieve_with_time(project_id, job_id)
        return job

    async def _retrieve_with_time(
        self, project_id: str, job_id: str
    ) -> tuple[TrainingJob, datetime | None]:
        response = await self._core.request(wire.GET_JOB, wire.GET_JOB.path(project_id, job_id))
        return response.value.training_job, response.server_time

    def list(self, project_id: str) -> AsyncPager[TrainingJob]:
        """All jobs of a project: ``await`` it for a list, or ``async for`` over it. Idempotent."""
        path = wire.LIST_JOBS.path(project_id)

        async def fetch() -> builtins.list[TrainingJob]:
            return (await self._core.request(wire.LIST_JOBS, path)).value.training_jobs

        return AsyncPager(single_page(fetch))

    def search(
        self,
        *,
        project_id: str | None = None,
        job_id: str | None = None,
        statuses: Sequence[str] | None = None,
        order: Literal["asc", "desc"] = "desc",
    ) -> AsyncPager[TrainingJob]:
        """Jobs across projects, filtered, ordered by creation time. Idempotent (a read)."""
        if order not in ("asc", "desc"):
            raise InvalidInputError("order", "must be 'asc' or 'desc'")
        if isinstance(statuses, str):
            raise InvalidInputError("statuses", "must be a list of statuses, not one string")
        body = wire.SearchRequest(
            project_id=None if project_id is None else _non_empty("project_id", project_id),
            job_id=None if job_id is None else _non_empty("job_id", job_id),
            statuses=None if statuses is None else builtins.list(statuses),
            order_by=[wire.OrderBy(field="created_at", order=order)],
        )
        route = wire.SEARCH_JOBS

        async def fetch() -> builtins.list[TrainingJob]:
            return (await self._core.request(route, route.path(), body=body)).value.training_jobs

        return AsyncPager(single_page(fetch))

    async def find(self, job_id: str) -> TrainingJob:
        """Look a job up by its id alone, whatever its project. Idempotent.

        Raises:
            NotFoundError: No job has this id.
        """
        matches = [job for job in await self.search(job_id=job_id) if job.id == job_id]
        if not matches:
            raise NotFoundError(f"no training job with id {job_id!r}", status_code=404)
        return matches[0]

    async def stop(self, project_id: str, job_id: str) -> TrainingJob:
        """Stop a running job. Not retried after the request may have arrived."""
        path = wire.STOP_JOB.path(project_id, job_id)
        return (await self._core.request(wire.STOP_JOB, path, body=wire.EMPTY)).value.training_job

    async def delete(self, project_id: str, job_id: str) -> JobTombstone:
        """Delete a job. Not retried after the request may have arrived."""
        path = wire.DELETE_JOB.path(project_id, job_id)
        return (await self._core.request(wire.DELETE_JOB, path)).value

    async def update(
        self,
        project_id: str,
        job_id: str,
        *,
        priority: int | None = None,
        availability_model: AvailabilityModelValue | None = None,
    ) -> TrainingJob:
        """Change the queue priority or the capacity of a pending job.

        Not retried after the request may have arrived.

        Args:
            project_id: The job's project.
            job_id: The job; it must still be pending.
            priority: The new queue priority; higher goes first.
            availability_model: The new capacity, e.g. `AvailabilityModel.SPOT`.
        """
        path = wire.UPDATE_JOB.path(project_id, job_id)
        body = _job_update(priority, availability_model)
        return (await self._core.request(wire.UPDATE_JOB, path, body=body)).value.training_job

    async def metrics(
        self,
        project_id: str,
        job_id: str,
        *,
        start: TimePoint | None = None,
        end: TimePoint | None = None,
        step_seconds: int | None = None,
    ) -> JobMetrics:
        """CPU, GPU and storage metrics of a job over a time range. Idempotent."""
        if step_seconds is not None and (
            not isinstance(step_seconds, int) or isinstance(step_seconds, bool) or step_seconds < 1
        ):
            raise InvalidInputError("step_seconds", "must be a positive integer")
        params = wire.metrics_params(_millis("start", start), _millis("end", end), step_seconds)
        path = wire.JOB_METRICS.path(project_id, job_id)
        return (await self._core.request(wire.JOB_METRICS, path, params=params)).value

    async def checkpoints(self, project_id: str, job_id: str) -> builtins.list[Checkpoint]:
        """The checkpoints a job has written. Idempotent."""
        path = wire.JOB_CHECKPOINTS.path(project_id, job_id)
        return (await self._core.request(wire.JOB_CHECKPOINTS, path)).value.checkpoints

    def checkpoint_files(
        self, project_id: str, job_id: str, *, page_size: int = 1000
    ) -> AsyncPager[CheckpointFile]:
        """Every checkpoint file with a presigned URL, fetched page by page. Idempotent."""
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise InvalidInputError("page_size", "must be a positive integer")
        path = wire.CHECKPOINT_FILES.path(project_id, job_id)

        async def fetch(token: int | None) -> tuple[builtins.list[CheckpointFile], int | None]:
            params = wire.checkpoint_files_params(page_size, token)
            page = (await self._core.request(wire.CHECKPOINT_FILES, path, params=params)).value
            return page.presigned_urls, page.next_page_token

        return AsyncPager(offset_token_pages(fetch))

    async def download_urls(self, project_id: str, job_id: str) -> builtins.list[str]:
        """Presigned URLs of the job's artifacts. Idempotent."""
        path = wire.JOB_DOWNLOAD.path(project_id, job_id)
        return (await self._core.request(wire.JOB_DOWNLOAD, path)).value.artifact_presigned_urls

    @property
    def sessions(self) -> SessionsResource:
        """The jobs' interactive sessions."""
        return SessionsResource(self._core, self._reconciler)

    async def queue_context(self, job_id: str) -> QueueContext:
        """Why a job waits: capacity, running jobs and jobs ahead of it. Idempotent."""
        path = wire.QUEUE_CONTEXT.path(job_id)
        return (await self._core.request(wire.QUEUE_CONTEXT, path)).value

    async def capacity(self) -> TrainingCapacity:
        """GPU capacity available for training, per GPU type and team. Idempotent.

        The same as `CapacityResource.retrieve` (``client.capacity.retrieve()``).
        """
        return (await self._core.request(wire.CAPACITY, wire.CAPACITY.path())).value

    def logs(
        self,
        project_id: str,
        job_id: str,
        *,
        start: TimePoint | None = None,
        end: TimePoint | None = None,
        min_level: LogLevelValue | None = None,
        follow: bool = False,
        poll_interval: float = 2.0,
    ) -> AsyncPager[LogLine]:
        """A job's log lines, oldest first, none lost or repeated. Idempotent (reads).

        Like every list-style call, ``await`` it for a list or ``async for``
        over it; ``.pages()`` gives the lines as fetched.

        Args:
            project_id: The job's project.
            job_id: The job.
            start: From this time; by default from the job's creation.
            end: Until this time; by default until now. Not with ``follow``.
            min_level: Only lines at or above this level, e.g. `LogLevel.WARNING`.
            follow: Keep polling for new lines until the job finishes.
            poll_interval: Seconds between polls when following.
        """
        path = wire.JOB_LOGS.path(project_id, job_id)
        if follow and end is not None:
            raise InvalidInputError("end", "cannot be combined with follow=True")
        if min_level is not None:
            _non_empty("min_level", min_level)  # a level the server adds later is sent too
        _check_interval("poll_interval", poll_interval)

        async def fetch(
            start_ms: int, end_ms: int | None, direction: str
        ) -> builtins.list[LogLine]:
            params = wire.log_params(start_ms, end_ms, direction, min_level)
            return (await self._core.request(wire.JOB_LOGS, path, params=params)).value.logs

        return AsyncPager(
            log_pages(
                fetch,
                start_ms=_millis("start", start),
                end_ms=_millis("end", end),
                job=lambda: self._retrieve_with_time(project_id, job_id),
                follow=follow,
                poll_interval=poll_interval,
                clock=self._core.clock,
            )
        )

    async def wait(
        self,
        project_id: str,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_status_change: Callable[[TrainingJob], object] | None = None,
        on_timeout: Literal["raise", "stop"] = "raise",
        max_pending: float | None = None,
        max_running: float | None = None,
        raise_on_failure: bool = False,
        log_tail: int = 0,
    ) -> FinishedJob:
        """Wait until the job reaches a terminal status and return it.

        Concurrent waits for jobs of one project share one listing per poll
        interval (see `PollSettings`), however many there are. An unknown
        status counts as terminal, so a new server-side status never makes
        this hang.

        Args:
            project_id: The job's project.
            job_id: The job.
            timeout: Seconds for the whole wait (None: no limit).
            poll_interval: Poll at least this often; by default the interval
                adapts within the client's ``poll`` settings.
            on_status_change: Called with the job each time its status changes.
            on_timeout: When ``timeout``, ``max_pending`` or ``max_running``
                passes: ``"raise"`` `WaitTimeoutError`, or ``"stop"`` the job
                and return it (``.stopped_for`` says which limit).
            max_pending: Seconds the job may take to start RUNNING.
            max_running: Seconds the job may run.
            raise_on_failure: Raise `JobFailedError` if the job fails
                (FAILED, DEPLOY_FAILED, PREEMPTED).
            log_tail: For a failed job, fetch its last this-many log lines
                (into ``.log_tail``, or the error's).

        Raises:
            WaitTimeoutError: A limit passed with ``on_timeout="raise"``;
                ``.job`` is the last state seen and ``.reason`` the limit.
            JobFailedError: The job failed and ``raise_on_failure`` is set.
        """
        if on_timeout not in ("raise", "stop"):
            raise InvalidInputError("on_timeout", "must be 'raise' or 'stop'")
        limits = Limits(timeout, max_pending, max_running, on_timeout)
        _check_optional_interval("poll_interval", poll_interval)
        wire.GET_JOB.path(project_id, job_id)  # refuse bad ids before the first poll
        return await wait_job(
            self._poller,
            self._core,
            project_id,
            job_id,
            limits=limits,
            poll_interval=poll_interval,
            on_status_change=on_status_change,
            log_lines=_check_log_tail(log_tail),
            raise_on_failure=raise_on_failure,
        )

    async def wait_many(
        self,
        project_id: str,
        job_ids: Iterable[str],
        *,
        timeout: float | None = None,
        return_when: ReturnWhen = "ALL_COMPLETED",
        on_timeout: Literal["return", "raise", "stop"] = "return",
        max_pending: float | None = None,
        max_running: float | None = None,
        raise_on_failure: bool = False,
        log_tail: int = 0,
        poll_interval: float | None = None,
        on_event: Callable[[JobEvent], object] | None = None,
    ) -> WaitManyResult:
        """Wait for many jobs of a project, in the spirit of `asyncio.wait`.

        ``done, pending = await client.jobs.wait_many(p, ids)``: ``done`` maps
        each finished job's id to it (`FinishedJob`), ``pending`` each other
        job's id to its last state seen; both in the order of ``job_ids``.
        Every job is watched through the client's one listing per interval.

        Args:
            project_id: The jobs' project.
            job_ids: The jobs.
            timeout: Seconds to wait; then the result is returned as it stands
                (``on_timeout="return"``), raised, or the rest are stopped.
            return_when: ``"ALL_COMPLETED"``, ``"FIRST_COMPLETED"`` (any
                terminal status) or ``"FIRST_FAILED"`` (FAILED, DEPLOY_FAILED,
                PREEMPTED; or all done).
            on_timeout: ``"return"``, ``"raise"`` or ``"stop"``; the caps need
                ``"raise"`` or ``"stop"``.
            max_pending: Seconds a job may take to start RUNNING.
            max_running: Seconds a job may run.
            raise_on_failure: Raise `JobFailedError` for the first failed job.
            log_tail: Last log lines to fetch for each failed job.
            poll_interval: Poll at least this often.
            on_event: Called with each `JobEvent` of these jobs.

        Raises:
            WaitTimeoutError: A limit passed with ``on_timeout="raise"``.
            JobFailedError: A job failed and ``raise_on_failure`` is set.
        """
        if isinstance(job_ids, str):
            raise InvalidInputError("job_ids", "must be a list of job ids, not one string")
        ids = builtins.list(job_ids)
        for job_id in ids:
            wire.GET_JOB.path(project_id, job_id)
        limits = Limits(timeout, max_pending, max_running, on_timeout)
        _check_optional_interval("poll_interval", poll_interval)
        return await wait_jobs(
            self._poller,
            self._core,
            project_id,
            ids,
            limits=limits,
            return_when=return_when,
            poll_interval=poll_interval,
            on_event=on_event,
            log_lines=_check_log_tail(log_tail),
            raise_on_failure=raise_on_failure,
        )

    def watch(
        self,
        project_id: str,
        *,
        job_ids: Iterable[str] | None = None,
        poll_interval: float | None = None,
    ) -> AsyncIterator[JobEvent]:
        """Status changes of jobs as they are seen: ``async for event in client.jobs.watch(p)``.

        Each `JobEvent` carries the job, its previous status (None the first
        time a job is seen: every job is reported once as it stands) and when
        it was seen. Served by the client's one listing per project per
        interval, shared with every wait.

        Args:
            project_id: The project.
            job_ids: Only these jobs; the iteration ends once all are terminal.
                None: every job of the project, new ones included, until the
                caller stops iterating (or cancels).
            poll_interval: Poll at least this often.
        """
        wire.LIST_JOBS.path(project_id)
        if isinstance(job_ids, str):
            raise InvalidInputError("job_ids", "must be a list of job ids, not one string")
        ids = None if job_ids is None else builtins.list(job_ids)
        for job_id in ids or ():
            wire.GET_JOB.path(project_id, job_id)
        _check_optional_interval("poll_interval", poll_interval)
        return watch_jobs(self._poller, self._core, project_id, ids, poll_interval=poll_interval)

    async def supervise(
        self,
        project_id: str,
        specs: Iterable[SpecInput],
        *,
        max_attempts: int = 3,
        resume_from_checkpoint: bool = True,
        relaunch_on: Iterable[str] = (JobStatus.PREEMPTED,),
        on_event: Callable[[JobEvent], object] | None = None,
        concurrency: int = 32,
        poll_interval: float | None = None,
    ) -> builtins.list[SupervisedRun]:
        """Launch jobs, see them through, and relaunch those that were preempted.

        Each spec (it must have a ``name``) is launched once through
        ``create_many(..., adopt_existing=True)`` and watched on the client's
        shared poller. An attempt that ends in one of ``relaunch_on`` is
        launched again as ``<name>-attempt-2``, ``<name>-attempt-3``, ... up to
        ``max_attempts`` attempts, loading the latest checkpoint an earlier
        attempt wrote through ``runtime.load_checkpoint_config``.

        Safe to re-run after a crash: jobs named after a spec are taken as its
        attempts, so a finished run launches nothing, a running attempt is
        followed, and only a missing next attempt is launched.

        Args:
            project_id: The project to run in.
            specs: Named specs, models or dicts.
            max_attempts: Launches per spec at most, the first included.
            resume_from_checkpoint: Make each relaunch load the latest checkpoint.
            relaunch_on: Final statuses that earn a relaunch; add
                ``JobStatus.FAILED`` to retry failures too.
            on_event: Called with each `JobEvent` of every attempt.
            concurrency: Creates and checkpoint reads in flight at once.
            poll_interval: Poll at least this often.

        Returns:
            One `SupervisedRun` per spec, in input order: every attempt with its
            final status and checkpoints.

        Raises:
            InvalidInputError: A spec is invalid or has no name, or names repeat.
        """
        wire.LIST_JOBS.path(project_id)
        checked = [
            checked_struct(f"specs[{i}]", spec, TrainingJobSpec) for i, spec in enumerate(specs)
        ]
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInputError("max_attempts", "must be a positive integer")
        if isinstance(relaunch_on, str):
            raise InvalidInputError("relaunch_on", "must be a list of statuses, not one string")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError("concurrency", "must be a positive integer")
        _check_optional_interval("poll_interval", poll_interval)
        return await run_supervise(
            self._core,
            self._reconciler,
            self._poller,
            project_id,
            checked,
            max_attempts=max_attempts,
            resume_from_checkpoint=resume_from_checkpoint,
            relaunch_on=builtins.list(relaunch_on),
            on_event=on_event,
            concurrency=concurrency,
            poll_interval=poll_interval,
        )


def _check_optional_interval(field: str, value: float | None) -> None:
    if value is not None:
        _check_interval(field, value)


def _check_log_tail(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise InvalidInputError("log_tail", "must be an integer from 0 to 1000")
    return value


def _check_interval(field: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(field, "must be a positive, finite number of seconds")


def _job_update(priority: int | None, availability_model: str | None) -> wire.UpdateJobRequest:
    if priority is None and availability_model is None:
        raise InvalidInputError("priority", "give priority, availability_model or both")
    body = wire.UpdateJobRequest()
    if priority is not None:
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidInputError("priority", "must be an integer")
        body.priority = priority
    if availability_model is not None:
        body.availability_model = _non_empty("availability_model", availability_model)
    return body


def _non_empty(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, "must be a non-empty string")
    return value
