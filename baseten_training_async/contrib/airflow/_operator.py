"""The operator: create a training job exactly once, then defer until it ends."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from baseten_training_async import (
    JobStatus,
    TrainingClient,
    TrainingJob,
    TrainingJobSpec,
    WaitTimeoutError,
)

from .._outcome import failure_message, job_name
from ._hook import BasetenTrainingHook
from ._trigger import BasetenTrainingJobTrigger

__all__ = ["BasetenTrainingJobOperator"]


class BasetenTrainingJobOperator(BaseOperator):
    """Run a Baseten training job and succeed when it completes.

    The task creates the job, then defers to `BasetenTrainingJobTrigger`, so no
    worker slot is held while the job trains. It resumes with the final job,
    returned as a dict (the task's XCom), and fails with the job's error when
    the job ends other than COMPLETED.

    The job is created exactly once per task of a DAG run: it is named after the
    DAG, the run, the task and its map index (unless ``spec`` names it or
    ``job_name`` is given), and a job of that name already in the project is
    adopted. A retried task (or a task whose worker died after the create) thus
    follows the job it launched, even one that has already ended; to launch
    again, clear the task in a new run or template ``job_name``, e.g.
    ``"train-{{ ti.try_number }}"``.

    Args:
        spec: The job, as a `TrainingJobSpec` or a dict of one (templated).
        project_id: The project to run in (templated); or give ``project_name``.
        project_name: A project, created if missing (templated).
        job_name: The job's name (templated); see above for the default.
        baseten_conn_id: The Airflow connection of type ``baseten``.
        poll_interval: Seconds between status polls.
        wait_timeout: Give up waiting after this long (from the first attempt's
            defer); the job is then stopped if ``stop_on_timeout``.
        stop_on_timeout: Stop the job when ``wait_timeout`` passes.
        stop_on_kill: Stop the job when the task is killed.
        forward_logs: Copy the job's log lines into the task's log.
        deferrable: Defer to the triggerer (the default); False waits in the worker.
        **kwargs: `BaseOperator` arguments (``retries``, ...).
    """

    template_fields: Sequence[str] = ("spec", "project_id", "project_name", "job_name")
    ui_color = "#c6f2d5"

    def __init__(
        self,
        *,
        spec: TrainingJobSpec | Mapping[str, Any],
        project_id: str | None = None,
        project_name: str | None = None,
        job_name: str | None = None,
        baseten_conn_id: str = BasetenTrainingHook.default_conn_name,
        poll_interval: float = 30.0,
        wait_timeout: timedelta | float | None = None,
        stop_on_timeout: bool = True,
        stop_on_kill: bool = True,
        forward_logs: bool = False,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (project_id is None) == (project_name is None):
            raise ValueError("give exactly one of project_id and project_name")
        self.spec = msgspec.to_builtins(spec) if isinstance(spec, TrainingJobSpec) else dict(spec)
        self.project_id = project_id
        self.project_name = project_name
        self.job_name = job_name
        self.baseten_conn_id = baseten_conn_id
        self.poll_interval = poll_interval
        self.wait_timeout = (
            wait_timeout.total_seconds() if isinstance(wait_timeout, timedelta) else wait_timeout
        )
        self.stop_on_timeout = stop_on_timeout
        self.stop_on_kill = stop_on_kill
        self.forward_logs = forward_logs
        self.deferrable = deferrable
        self._job: TrainingJob | None = None

    def _hook(self) -> BasetenTrainingHook:
        return BasetenTrainingHook(self.baseten_conn_id)

    def _name(self, context: Context) -> str:
        if self.job_name:
            return self.job_name
        if self.spec.get("name"):
            return str(self.spec["name"])
        parts = [self.dag_id, str(context["run_id"]), self.task_id]
        map_index = getattr(context["ti"], "map_index", -1)
        if map_index is not None and map_index >= 0:
            parts.append(str(map_index))
        return job_name(*parts)

    def execute(self, context: Context) -> dict[str, Any]:
        """Create (or adopt) the job, then defer until it ends."""
        spec = {**self.spec, "name": self._name(context)}
        with self._hook().get_conn() as client:
            project_id = self.project_id or client.projects.upsert(self.project_name).id
            (job,) = client.jobs.create_many(project_id, [spec], adopt_existing=True)
            if not isinstance(job, TrainingJob):
                raise job  # the spec's own error (invalid, refused, unreachable API)
            self._job = job
            self.log.info("Training job %s (%s) is %s", job.id, job.name, job.current_status)
            deadline = None if self.wait_timeout is None else time.time() + self.wait_timeout
            trigger = BasetenTrainingJobTrigger(
                project_id,
                job.id,
                baseten_conn_id=self.baseten_conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                forward_logs=self.forward_logs,
                stop_on_kill=self.stop_on_kill,
            )
            if job.is_terminal:
                return self._finish(job)
            if not self.deferrable:
                return self._wait_here(client, project_id, job.id, deadline)
        self.defer(trigger=trigger, method_name="execute_complete")

    def _wait_here(
        self, client: TrainingClient, project_id: str, job_id: str, deadline: float | None
    ) -> dict[str, Any]:
        if self.forward_logs:
            # Follows the job to its end; the deadline is checked between lines.
            lines = iter(
                client.jobs.logs(project_id, job_id, follow=True, poll_interval=self.poll_interval)
            )
            try:
                for line in lines:
                    self.log.info("[%s] %s", job_id, line.message)
                    if deadline is not None and time.time() > deadline:
                        break
            finally:
                lines.close()  # stops the follow, releasing its requests
        try:
            job = client.jobs.wait(
                project_id,
                job_id,
                timeout=None if deadline is None else max(deadline - time.time(), 1e-3),
                poll_interval=self.poll_interval,
            )
        except WaitTimeoutError as exc:
            self._timed_out(project_id, job_id, str(exc))
        return self._finish(job)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: succeed, or fail with the job's error."""
        status = event.get("status")
        if status == "done":
            return self._finish(msgspec.convert(event["job"], TrainingJob))
        job = event.get("job")
        if status == "timeout" and job is not None:
            self._timed_out(job["training_project"]["id"], job["id"], str(event.get("message")))
        raise AirflowException(f"waiting for the training job failed: {event.get('message')}")

    def _finish(self, job: TrainingJob) -> dict[str, Any]:
        self._job = job
        failure = failure_message(job)
        if failure is not None:
            raise AirflowException(failure)
        self.log.info("Training job %s %s", job.id, JobStatus.COMPLETED)
        result: dict[str, Any] = msgspec.to_builtins(job)
        return result

    def _timed_out(self, project_id: str, job_id: str, message: str) -> None:
        if self.stop_on_timeout:
            with self._hook().get_conn() as client:
                current = client.jobs.retrieve(project_id, job_id)
                if not current.is_terminal:
                    client.jobs.stop(project_id, job_id)
                    self.log.info("Stopped training job %s after the wait timed out", job_id)
        raise AirflowException(f"training job {job_id} did not finish in time: {message}")

    def on_kill(self) -> None:
        """Stop the job when the running task is killed."""
        job = self._job
        if job is None or not self.stop_on_kill or job.is_terminal:
            return
        with self._hook().get_conn() as client:
            client.jobs.stop(job.training_project.id, job.id)
        self.log.info("Stopped training job %s", job.id)
