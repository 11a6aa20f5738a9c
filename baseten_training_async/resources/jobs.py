"""``client.jobs``: create, observe, control and clean up training jobs."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .._codec import has_control_characters
from .._errors import BasetenError, InvalidInputError, NotFoundError
from .._fanout import ProgressCallback, run_create_many
from .._pagination import AsyncPager, iter_logs, offset_token_pages, single_page
from .._polling import wait_for_terminal
from .._wire import (
    CheckpointFilesPage,
    CheckpointsEnvelope,
    DownloadEnvelope,
    JobEnvelope,
    JobsEnvelope,
    OrderBy,
    SearchRequest,
    UpdateJobRequest,
)
from ..models import (
    Checkpoint,
    CheckpointFile,
    JobMetrics,
    JobTombstone,
    LogLine,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
)
from ._base import Resource, checked_struct, segment

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


def encode_spec(spec: SpecInput) -> tuple[TrainingJobSpec, bytes]:
    """Validate a spec and return it with the create request body it makes."""
    checked, encoded = checked_struct("spec", spec, TrainingJobSpec)
    return checked, b'{"training_job":' + encoded + b"}"


class JobsResource(Resource):
    """Everything about training jobs."""

    __slots__ = ()

    def _job_path(self, project_id: str, job_id: str, suffix: str = "") -> str:
        return (
            f"/v1/training_projects/{segment('project_id', project_id)}"
            f"/jobs/{segment('job_id', job_id)}{suffix}"
        )

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
        project = segment("project_id", project_id)
        checked, body = encode_spec(spec)
        return await self._core.reconciler.create(
            project,
            body,
            name=checked.name,
            headers=_idempotency_headers(idempotency_key),
            claims=None,
            spec=checked,
        )

    async def recreate(
        self, project_id: str, job_id: str, *, idempotency_key: str | None = None
    ) -> TrainingJob:
        """Start a new job with the configuration of an existing one.

        Like `create`, never resent blindly: when the outcome is unknown,
        the new job is looked for under the original job's name; if that job
        has no name, ``APIConnectionError(maybe_committed=True)`` is raised.
        """
        project = segment("project_id", project_id)
        return await self._core.reconciler.create(
            project,
            None,
            name=None,
            headers=_idempotency_headers(idempotency_key),
            claims=None,
            path_suffix=f"/jobs/{segment('job_id', job_id)}/recreate",
            source_job_id=job_id,
        )

    async def create_many(
        self,
        project_id: str,
        specs: Iterable[SpecInput] | AsyncIterable[SpecInput],
        *,
        concurrency: int = 32,
        return_exceptions: bool = True,
        on_progress: ProgressCallback | None = None,
        adopt_existing: bool = False,
    ) -> builtins.list[TrainingJob | BasetenError]:
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
                job the server made is lost), then that failure is raised.
            on_progress: Called as ``on_progress(done, failed, total)``;
                ``total`` is None until the input is exhausted.
            adopt_existing: Return the existing job for a spec whose name a job
                in the project already has, instead of creating another. Makes a
                re-run of a batch (after a crash, or from another process) safe.
        """
        return await run_create_many(
            self._core,
            segment("project_id", project_id),
            specs,
            encode=encode_spec,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
            adopt_existing=adopt_existing,
        )

    async def retrieve(self, project_id: str, job_id: str) -> TrainingJob:
        """Look up one job."""
        job, _ = await self._retrieve_with_date(project_id, job_id)
        return job

    async def _retrieve_with_date(
        self, project_id: str, job_id: str
    ) -> tuple[TrainingJob, str | None]:
        path = self._job_path(project_id, job_id)
        envelope, date = await self._core.request_with_date(
            "GET", path, JobEnvelope, idempotent=True
        )
        return envelope.training_job, date

    def list(self, project_id: str) -> AsyncPager[TrainingJob]:
        """All jobs of a project: ``await`` it for a list, or ``async for`` over it."""
        path = f"/v1/training_projects/{segment('project_id', project_id)}/jobs"

        async def fetch() -> builtins.list[TrainingJob]:
            envelope = await self._core.request("GET", path, JobsEnvelope, idempotent=True)
            return envelope.training_jobs

        return AsyncPager(single_page(fetch))

    def search(
        self,
        *,
        project_id: str | None = None,
        job_id: str | None = None,
        statuses: Sequence[str] | None = None,
        order: Literal["asc", "desc"] = "desc",
    ) -> AsyncPager[TrainingJob]:
        """Jobs across projects, filtered, ordered by creation time."""
        if order not in ("asc", "desc"):
            raise InvalidInputError("order", "must be 'asc' or 'desc'")
        if isinstance(statuses, str):
            raise InvalidInputError("statuses", "must be a list of statuses, not one string")
        body = SearchRequest(
            project_id=None if project_id is None else _non_empty("project_id", project_id),
            job_id=None if job_id is None else _non_empty("job_id", job_id),
            statuses=None if statuses is None else list(statuses),
            order_by=[OrderBy(field="created_at", order=order)],
        )

        async def fetch() -> builtins.list[TrainingJob]:
            envelope = await self._core.request(
                "POST", "/v1/training_jobs/search", JobsEnvelope, body=body, idempotent=True
            )
            return envelope.training_jobs

        return AsyncPager(single_page(fetch))

    async def find(self, job_id: str) -> TrainingJob:
        """Look a job up by its id alone, whatever its project.

        Raises:
            NotFoundError: No job has this id.
        """
        matches = [job for job in await self.search(job_id=job_id) if job.id == job_id]
        if not matches:
            raise NotFoundError(f"no training job with id {job_id!r}", status_code=404)
        return matches[0]

    async def stop(self, project_id: str, job_id: str) -> TrainingJob:
        """Stop a running job."""
        path = self._job_path(project_id, job_id, "/stop")
        envelope = await self._core.request("POST", path, JobEnvelope, body=b"{}", idempotent=False)
        return envelope.training_job

    async def delete(self, project_id: str, job_id: str) -> JobTombstone:
        """Delete a job."""
        path = self._job_path(project_id, job_id)
        return await self._core.request("DELETE", path, JobTombstone, idempotent=False)

    async def update(self, project_id: str, job_id: str, *, priority: int) -> TrainingJob:
        """Change the queue priority of a pending job (higher goes first)."""
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidInputError("priority", "must be an integer")
        path = self._job_path(project_id, job_id)
        body = UpdateJobRequest(priority=priority)
        envelope = await self._core.request("PATCH", path, JobEnvelope, body=body, idempotent=False)
        return envelope.training_job

    async def metrics(
        self,
        project_id: str,
        job_id: str,
        *,
        start: TimePoint | None = None,
        end: TimePoint | None = None,
        step_seconds: int | None = None,
    ) -> JobMetrics:
        """CPU, GPU and storage metrics of a job over a time range."""
        params: dict[str, str | int] = {}
        for key, value in (
            ("start_epoch_millis", _millis("start", start)),
            ("end_epoch_millis", _millis("end", end)),
        ):
            if value is not None:
                params[key] = value
        if step_seconds is not None:
            if not isinstance(step_seconds, int) or step_seconds < 1:
                raise InvalidInputError("step_seconds", "must be a positive integer")
            params["step_seconds"] = step_seconds
        path = self._job_path(project_id, job_id, "/metrics")
        return await self._core.request("GET", path, JobMetrics, params=params, idempotent=True)

    async def checkpoints(self, project_id: str, job_id: str) -> builtins.list[Checkpoint]:
        """The checkpoints a job has written."""
        path = self._job_path(project_id, job_id, "/checkpoints")
        envelope = await self._core.request("GET", path, CheckpointsEnvelope, idempotent=True)
        return envelope.checkpoints

    def checkpoint_files(
        self, project_id: str, job_id: str, *, page_size: int = 1000
    ) -> AsyncPager[CheckpointFile]:
        """Every checkpoint file with a presigned URL, fetched page by page."""
        if not isinstance(page_size, int) or page_size < 1:
            raise InvalidInputError("page_size", "must be a positive integer")
        path = self._job_path(project_id, job_id, "/checkpoint_files")

        async def fetch(token: int | None) -> tuple[builtins.list[CheckpointFile], int | None]:
            params = {"page_size": page_size, "page_token": token or 0}
            page = await self._core.request(
                "GET", path, CheckpointFilesPage, params=params, idempotent=True
            )
            return page.presigned_urls, page.next_page_token

        return AsyncPager(offset_token_pages(fetch))

    async def download_urls(self, project_id: str, job_id: str) -> builtins.list[str]:
        """Presigned URLs of the job's artifacts."""
        path = self._job_path(project_id, job_id, "/download")
        envelope = await self._core.request("GET", path, DownloadEnvelope, idempotent=True)
        return envelope.artifact_presigned_urls

    async def capacity(self) -> TrainingCapacity:
        """GPU capacity available for training, per GPU type and team."""
        return await self._core.request(
            "GET", "/v1/training/capacity", TrainingCapacity, idempotent=True
        )

    def logs(
        self,
        project_id: str,
        job_id: str,
        *,
        start: TimePoint | None = None,
        end: TimePoint | None = None,
        min_level: str | None = None,
        follow: bool = False,
        poll_interval: float = 2.0,
    ) -> AsyncIterator[LogLine]:
        """A job's log lines, oldest first, none lost or repeated.

        Args:
            project_id: The job's project.
            job_id: The job.
            start: From this time; by default from the job's creation.
            end: Until this time; by default until now. Not with ``follow``.
            min_level: Only lines at or above ``DEBUG``/``INFO``/``WARNING``/``ERROR``.
            follow: Keep polling for new lines until the job finishes.
            poll_interval: Seconds between polls when following.
        """
        path = self._job_path(project_id, job_id, "/logs")
        if follow and end is not None:
            raise InvalidInputError("end", "cannot be combined with follow=True")
        if min_level is not None and min_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise InvalidInputError("min_level", "must be DEBUG, INFO, WARNING or ERROR")
        if poll_interval <= 0:
            raise InvalidInputError("poll_interval", "must be positive")
        return iter_logs(
            self._core,
            path,
            start_ms=_millis("start", start),
            end_ms=_millis("end", end),
            min_level=min_level,
            job=lambda: self._retrieve_with_date(project_id, job_id),
            follow=follow,
            poll_interval=poll_interval,
        )

    async def wait(
        self,
        project_id: str,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 10.0,
        on_status_change: Callable[[TrainingJob], object] | None = None,
    ) -> TrainingJob:
        """Poll until the job reaches a terminal status and return it.

        An unknown status counts as terminal, so a new server-side status never
        makes this hang.

        Raises:
            WaitTimeoutError: ``timeout`` passed first; ``.job`` is the last state seen.
        """
        if timeout is not None and timeout <= 0:
            raise InvalidInputError("timeout", "must be positive or None")
        if poll_interval <= 0:
            raise InvalidInputError("poll_interval", "must be positive")
        self._job_path(project_id, job_id)  # refuse bad ids before the first poll
        return await wait_for_terminal(
            lambda: self.retrieve(project_id, job_id),
            timeout=timeout,
            poll_interval=poll_interval,
            on_status_change=on_status_change,
            sleep=self._core.policy.sleep,
        )


def _non_empty(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, "must be a non-empty string")
    return value
