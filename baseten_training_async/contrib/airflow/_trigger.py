"""The trigger: follows a training job in the triggerer, without holding a worker slot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from airflow.triggers.base import BaseTrigger, TriggerEvent

from baseten_training_async import AsyncTrainingClient, BasetenError, TrainingJob, WaitTimeoutError

from ._hook import BasetenTrainingHook

__all__ = ["BasetenTrainingJobTrigger"]

_LOG_FLUSH_POLLS = 3  # polls allowed for the last log lines after the job ended


class BasetenTrainingJobTrigger(BaseTrigger):
    """Waits for a training job to finish, with the SDK's async client.

    Fires one event, a dict: ``{"status": "done", "job": {...}}`` when the job
    reached a terminal status (whatever it is: the operator judges it),
    ``{"status": "timeout", "job": {...}, "message": ...}`` when ``deadline``
    passed first, or ``{"status": "error", "message": ...}`` when the API could
    not be reached (after the SDK's retries).

    Args:
        project_id: The job's project.
        job_id: The job.
        baseten_conn_id: The Airflow connection.
        poll_interval: Seconds between status polls.
        deadline: Epoch seconds after which to stop waiting (absolute, so that
            a trigger restarted on another triggerer keeps it).
        forward_logs: Log the job's log lines (they land in the task's log).
        stop_on_kill: Stop the job when a user kills the deferred task
            (mark failed, clear); not on a triggerer restart or a time-out.
    """

    def __init__(
        self,
        project_id: str,
        job_id: str,
        *,
        baseten_conn_id: str = BasetenTrainingHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        forward_logs: bool = False,
        stop_on_kill: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves it unannotated
        self.project_id = project_id
        self.job_id = job_id
        self.baseten_conn_id = baseten_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.forward_logs = forward_logs
        self.stop_on_kill = stop_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and keyword arguments the triggerer rebuilds this trigger from."""
        return (
            f"{__package__}.{type(self).__name__}",
            {
                "project_id": self.project_id,
                "job_id": self.job_id,
                "baseten_conn_id": self.baseten_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "forward_logs": self.forward_logs,
                "stop_on_kill": self.stop_on_kill,
            },
        )

    async def _client(self) -> AsyncTrainingClient:
        return await BasetenTrainingHook(self.baseten_conn_id).aget_client()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Follow the job until it ends, then fire one event."""
        event: dict[str, Any]
        async with await self._client() as client:
            follower = (
                asyncio.create_task(self._forward_logs(client)) if self.forward_logs else None
            )
            try:
                job = await client.jobs.wait(
                    self.project_id,
                    self.job_id,
                    timeout=self._remaining(),
                    poll_interval=self.poll_interval,
                    on_status_change=self._log_status,
                )
                event = {"status": "done", "job": msgspec.to_builtins(job)}
                if follower is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            asyncio.shield(follower), _LOG_FLUSH_POLLS * self.poll_interval
                        )
            except WaitTimeoutError as exc:
                event = {
                    "status": "timeout",
                    "job": msgspec.to_builtins(exc.job) if exc.job is not None else None,
                    "message": str(exc),
                }
            except BasetenError as exc:
                event = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
            finally:
                if follower is not None:
                    follower.cancel()
                    await asyncio.gather(follower, return_exceptions=True)
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]  # unannotated in Airflow

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(self.deadline - time.time(), 1e-3)

    def _log_status(self, job: TrainingJob) -> None:
        self.log.info("Training job %s is %s", job.id, job.current_status)

    async def _forward_logs(self, client: AsyncTrainingClient) -> None:
        try:
            async for line in client.jobs.logs(
                self.project_id, self.job_id, follow=True, poll_interval=self.poll_interval
            ):
                self.log.info("[%s] %s", self.job_id, line.message)
        except BasetenError as exc:  # logs are a courtesy: never fail the wait for them
            self.log.warning("Stopped forwarding logs of job %s: %s", self.job_id, exc)

    async def on_kill(self) -> None:
        """Stop the job when a user killed the deferred task (Airflow 3.3 and later)."""
        if not self.stop_on_kill:
            return
        async with await self._client() as client:
            job = await client.jobs.retrieve(self.project_id, self.job_id)
            if not job.is_terminal:
                await client.jobs.stop(self.project_id, self.job_id)
                self.log.info("Stopped training job %s", self.job_id)
