"""What a standalone fake server needs, shared by ``python -m ...testing`` and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

from ._clock import FakeClock
from ._models import JobTimings
from ._server import FakeTrainingAPI

__all__ = ["standalone_api", "stop_on_signals"]


def standalone_api(
    *,
    api_key: str,
    seed: int,
    host: str,
    port: int,
    speed: float,
    job_seconds: float,
    rate_limit: float | None = None,
    rate_burst: int | None = None,
    capacity: int | None = None,
) -> FakeTrainingAPI:
    """A fake on a real-time clock, with a bounded request log for long runs."""
    return FakeTrainingAPI(
        api_key=api_key,
        seed=seed,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        capacity=capacity,
        clock=FakeClock.real(speed=speed),
        host=host,
        port=port,
        timings=JobTimings(running=job_seconds),
        request_log_limit=10_000,
    )


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside the block.

    Platforms without signal handlers in the loop (add_signal_handler raises
    NotImplementedError there) fall back to KeyboardInterrupt.
    """
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
