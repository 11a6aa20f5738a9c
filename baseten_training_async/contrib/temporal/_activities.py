"""Temporal activities: create a training job exactly once, wait for it, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from temporalio import activity
from temporalio.exceptions import ApplicationError

from baseten_training_async import (
    APIStatusError,
    AsyncTrainingClient,
    BadRequestError,
    InvalidInputError,
    TrainingJob,
    WaitTimeoutError,
)

from .._outcome import failure_message, job_name

__all__ = [
    "API_RATE_LIMIT",
    "CreateJobInput",
    "JobResult",
    "StopJobInput",
    "TrainingActivities",
    "WaitJobInput",
]

API_RATE_LIMIT = 100.0
"""Requests per second per API key that the Training API allows by default."""

_RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass
class CreateJobInput:
    """What `TrainingActivities.create_job` takes.

    Attributes:
        project_id: The project to run in.
        spec: The job, as a dict of a `TrainingJobSpec` (``msgspec.to_builtins(spec)``).
        name: The job's name; by default the spec's ``name``, else
            ``"<workflow id>.<activity id>"``. The name is what makes a retried
            activity find the job it created instead of creating another.
    """

    project_id: str
    spec: dict[str, Any]
    name: str | None = None


@dataclass
class WaitJobInput:
    """What `TrainingActivities.wait_job` takes.

    Attributes:
        project_id: The job's project.
        job_id: The job.
        poll_interval: Seconds between status polls.
        timeout: Seconds to wait in all, across retries of the activity.
        stop_on_cancel: Stop the job when the workflow cancels the activity.
        fail_on_error: Fail (not retryable) when the job ends other than COMPLETED.
        heartbeat_interval: Seconds between heartbeats; by default a third of the
            activity's heartbeat timeout, or ``poll_interval`` without one.
    """

    project_id: str
    job_id: str
    poll_interval: float = 30.0
    timeout: float | None = None
    stop_on_cancel: bool = False
    fail_on_error: bool = True
    heartbeat_interval: float | None = None


@dataclass
class StopJobInput:
    """What `TrainingActivities.stop_job` takes."""

    project_id: str
    job_id: str


@dataclass
class JobResult:
    """A job as activities return it: plain data that Temporal can serialize.

    Attributes:
        project_id: The job's project.
        job_id: The job's id.
        name: The job's name.
        status: Its ``current_status``.
        error_message: The job's error, if it failed.
        job: The whole `TrainingJob` as a dict; see `training_job`.
    """

    project_id: str
    job_id: str
    name: str | None
    status: str
    error_message: str | None
    job: dict[str, Any]

    @classmethod
    def of(cls, job: TrainingJob) -> JobResult:
        """The result of one job."""
        return cls(
            project_id=job.training_project.id,
            job_id=job.id,
            name=job.name,
            status=job.current_status,
            error_message=job.error_message,
            job=msgspec.to_builtins(job),
        )

    def training_job(self) -> TrainingJob:
        """The job as the SDK's model."""
        return msgspec.convert(self.job, TrainingJob)


@contextlib.contextmanager
def _temporal_errors() -> Iterator[None]:
    """Errors a retry cannot fix become non-retryable; the rest Temporal retries."""
    try:
        yield
    except InvalidInputError as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
    except APIStatusError as exc:
        if exc.status_code < 500 and exc.status_code not in _RETRYABLE_STATUSES:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        raise


def _resumed(details: Sequence[Any], job_id: str) -> dict[str, Any]:
    """The progress a previous attempt heartbeated for this job, if any."""
    if details and isinstance(details[-1], dict) and details[-1].get("job_id") == job_id:
        return dict(details[-1])
    return {}


class TrainingActivities:
    """Temporal activities over one `AsyncTrainingClient`.

    Register them with a worker (see `all`); call them from a workflow as
    ``workflow.execute_activity_method(TrainingActivities.create_job, ...)``.

    Args:
        client: The client every activity uses; the worker's event loop runs it.
    """

    def __init__(self, client: AsyncTrainingClient) -> None:
        self._client = client

    def all(self) -> list[Callable[..., Any]]:
        """The activities, for ``Worker(..., activities=activities.all())``."""
        return [self.create_job, self.wait_job, self.stop_job]

    @activity.defn(name="baseten.create_training_job")
    async def create_job(self, request: CreateJobInput) -> JobResult:
        """Create a job once, however often Temporal retries the activity.

        The job is named (see `CreateJobInput.name`), and a job of that name
        already in the project is returned instead of a new one, so a retry
        after a lost response or a worker crash adopts the job.
        """
        info = activity.info()
        ids = [part for part in (info.workflow_id, info.activity_id) if part]
        spec = dict(request.spec)
        spec["name"] = request.name or spec.get("name") or job_name(*ids)
        with _temporal_errors():
            (job,) = await self._client.jobs.create_many(
                request.project_id, [spec], adopt_existing=True
            )
            if not isinstance(job, TrainingJob):
                raise job  # this spec's own error, mapped like any other
        return JobResult.of(job)

    @activity.defn(name="baseten.wait_training_job")
    async def wait_job(self, request: WaitJobInput) -> JobResult:
        """Wait for a job to finish, heartbeating its last status.

        Each heartbeat carries ``{"job_id", "status", "deadline"}``. A retried
        attempt resumes from the last one: the same deadline (the timeout spans
        every attempt), and the job it was following, never a new one.

        Raises:
            ApplicationError: ``TrainingJobFailed`` (details: the `JobResult`) when
                the job ended other than COMPLETED and ``fail_on_error``;
                ``WaitTimeoutError`` when the timeout passed. Neither is retried.
        """
        info = activity.info()
        progress = _resumed(info.heartbeat_details, request.job_id)
        deadline = progress.get("deadline")
        if deadline is None and request.timeout is not None:
            deadline = time.time() + request.timeout
        progress.update(job_id=request.job_id, deadline=deadline)
        progress.setdefault("status", None)
        interval = request.heartbeat_interval or (
            info.heartbeat_timeout.total_seconds() / 3
            if info.heartbeat_timeout
            else request.poll_interval
        )

        def seen(job: TrainingJob) -> None:
            progress["status"] = job.current_status
            activity.heartbeat(dict(progress))

        async def keep_beating() -> None:
            while True:
                activity.heartbeat(dict(progress))
                await asyncio.sleep(interval)

        beating = asyncio.create_task(keep_beating())
        try:
            with _temporal_errors():
                job = await self._client.jobs.wait(
                    request.project_id,
                    request.job_id,
                    timeout=None if deadline is None else max(deadline - time.time(), 1e-3),
                    poll_interval=request.poll_interval,
                    on_status_change=seen,
                )
        except WaitTimeoutError as exc:
            raise ApplicationError(
                str(exc), progress.get("status"), type="WaitTimeoutError", non_retryable=True
            ) from exc
        except asyncio.CancelledError:
            if request.stop_on_cancel and not activity.is_worker_shutdown():
                # Shielded: a second cancellation must not abandon the stop half-sent.
                await asyncio.shield(self._stop(request.project_id, request.job_id))
            raise
        finally:
            beating.cancel()
        result = JobResult.of(job)
        failure = failure_message(job)
        if failure is not None and request.fail_on_error:
            raise ApplicationError(failure, result, type="TrainingJobFailed", non_retryable=True)
        return result

    @activity.defn(name="baseten.stop_training_job")
    async def stop_job(self, request: StopJobInput) -> JobResult:
        """Stop a job; a job that has already finished is returned as it is."""
        return JobResult.of(await self._stop(request.project_id, request.job_id))

    async def _stop(self, project_id: str, job_id: str) -> TrainingJob:
        with _temporal_errors():
            job = await self._client.jobs.retrieve(project_id, job_id)
            if job.is_terminal:
                return job
            try:
                return await self._client.jobs.stop(project_id, job_id)
            except BadRequestError:
                job = await self._client.jobs.retrieve(project_id, job_id)
                if job.is_terminal:  # it finished between the two calls
                    return job
                raise
