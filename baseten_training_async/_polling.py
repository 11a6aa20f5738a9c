"""Polling a job until it finishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._clock import Clock
from ._errors import WaitTimeoutError
from .models import TrainingJob

__all__ = ["wait_for_terminal"]


async def wait_for_terminal(
    fetch: Callable[[], Awaitable[TrainingJob]],
    *,
    timeout: float | None,
    poll_interval: float,
    on_status_change: Callable[[TrainingJob], object] | None,
    clock: Clock,
) -> TrainingJob:
    """Fetch the job every ``poll_interval`` seconds until its status is terminal.

    Raises:
        WaitTimeoutError: ``timeout`` seconds passed first.
    """
    deadline = None if timeout is None else clock.monotonic() + timeout
    last_status: str | None = None
    while True:
        job = await fetch()
        if job.current_status != last_status:
            last_status = job.current_status
            if on_status_change is not None:
                on_status_change(job)
        if job.is_terminal:
            return job
        pause = poll_interval
        if deadline is not None:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"job {job.id} still {job.current_status} after {timeout:g}s", job=job
                )
            pause = min(poll_interval, remaining)
        await clock.sleep(pause)
