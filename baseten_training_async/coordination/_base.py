"""The coordination seam: its protocol, lease outcome, error, and the in-process default."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from .._clock import Clock
from .._errors import BasetenError

__all__ = [
    "CoordinationError",
    "CoordinationWarning",
    "Coordinator",
    "InProcessCoordinator",
    "LeaseInfo",
]


class CoordinationError(BasetenError):
    """The shared coordination backend (Redis) could not be reached or failed.

    A create that fails with this error before its request was sent did not
    create anything (``maybe_committed`` is False); it is safe to run again.

    Attributes:
        maybe_committed: True only when the create's request had already been
            sent when coordination failed, so the job may exist.
    """

    def __init__(self, message: str, *, maybe_committed: bool = False) -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed


class CoordinationWarning(RuntimeWarning):
    """Coordination fell back to in-process behaviour after its backend failed."""


class LeaseInfo:
    """What taking a lease on a (project, job name) found.

    Attributes:
        taken_over: A previous holder's lease expired without being released
            (the holder died or stalled). Its create may have been sent, so
            look the job up by name before creating.
        waited: A previous holder released this lease after finishing (another
            worker, or an earlier run within the lease history). Its job most
            likely exists: look it up by name before creating.
    """

    __slots__ = ("_lost", "taken_over", "waited")

    def __init__(self, *, taken_over: bool = False, waited: bool = False) -> None:
        self.taken_over = taken_over
        self.waited = waited
        self._lost = False

    @property
    def reconcile(self) -> bool:
        """Whether someone held this name before: look the job up by name first."""
        return self.taken_over or self.waited

    @property
    def lost(self) -> bool:
        """Whether the lease could not be renewed while held (it may have expired)."""
        return self._lost

    def mark_lost(self) -> None:
        """Record that renewing the lease failed."""
        self._lost = True

    def __repr__(self) -> str:
        return f"LeaseInfo(taken_over={self.taken_over}, waited={self.waited}, lost={self._lost})"


@runtime_checkable
class Coordinator(Protocol):
    """Shares rate limits, 429 cool-downs and per-name create leases between clients.

    A client calls `bind` once before its first request, `acquire` before
    each HTTP attempt, `report_rate_limited` on each 429, holds `lease`
    around each named create until its outcome is settled, and calls
    `aclose` when it closes.
    """

    async def bind(self, *, key_fingerprint: str, clock: Clock) -> None:
        """Attach to a client.

        Args:
            key_fingerprint: The SHA-256 hex digest of the API key (never the key).
            clock: The client's clock; every wait and deadline is on it.
        """
        ...

    async def acquire(self, *, deadline: float | None) -> None:
        """Wait for a shared rate-limit token and any shared 429 cool-down.

        Args:
            deadline: A reading of the clock after which the attempt may not
                start; ``None`` for no limit.

        Raises:
            RateLimitError: The wait would pass ``deadline`` (``retry_after``
                says how long it would have been).
            CoordinationError: The shared backend failed.
        """
        ...

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """A 429 was seen: every client sharing this coordinator pauses ``retry_after``."""
        ...

    def lease(
        self, project_id: str, name: str
    ) -> contextlib.AbstractAsyncContextManager[LeaseInfo]:
        """Hold the exclusive right to create the job ``name`` in ``project_id``."""
        ...

    async def aclose(self) -> None:
        """Release what the coordinator holds. Safe to call more than once."""
        ...


class _Entry:
    __slots__ = ("lock", "released", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        self.released = False


class InProcessCoordinator:
    """The default: leases are asyncio locks within this process; nothing is shared.

    `acquire` and `report_rate_limited` return at once: the client's own flow
    control (its 429 gate and pacing) is all the rate limiting there is. A
    lease makes two tasks of this process that create the same name take
    turns; the second sees ``waited=True``.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def bind(self, *, key_fingerprint: str, clock: Clock) -> None:
        """Nothing to attach to."""

    async def acquire(self, *, deadline: float | None) -> None:
        """Return at once."""

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """Nothing to share."""

    @contextlib.asynccontextmanager
    async def lease(self, project_id: str, name: str) -> AsyncIterator[LeaseInfo]:
        """Hold this process's lock for ``(project_id, name)``."""
        key = (project_id, name)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                try:
                    yield LeaseInfo(waited=entry.released)
                finally:
                    entry.released = True
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    async def aclose(self) -> None:
        """Nothing to close."""

    def __repr__(self) -> str:
        return "InProcessCoordinator()"


class BoundCoordinator:
    """A client's coordinator, bound to its key fingerprint and clock on first use.

    The client builds one; the request core calls `acquire` and
    `report_rate_limited`, ``create_many`` takes `lease`.
    """

    __slots__ = ("_bound", "_clock", "_fingerprint", "_lock", "coordinator")

    def __init__(self, coordinator: Coordinator, *, key_fingerprint: str, clock: Clock) -> None:
        self.coordinator = coordinator
        self._fingerprint = key_fingerprint
        self._clock = clock
        self._bound = False
        self._lock = asyncio.Lock()

    async def ready(self) -> Coordinator:
        """The coordinator, bound (once)."""
        if not self._bound:
            async with self._lock:
                if not self._bound:
                    await self.coordinator.bind(
                        key_fingerprint=self._fingerprint, clock=self._clock
                    )
                    self._bound = True
        return self.coordinator

    async def acquire(self, *, deadline: float | None) -> None:
        """See `Coordinator.acquire`."""
        await (await self.ready()).acquire(deadline=deadline)

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """See `Coordinator.report_rate_limited`."""
        await (await self.ready()).report_rate_limited(retry_after)

    @contextlib.asynccontextmanager
    async def lease(self, project_id: str, name: str) -> AsyncIterator[LeaseInfo]:
        """See `Coordinator.lease`."""
        async with (await self.ready()).lease(project_id, name) as info:
            yield info

    async def aclose(self) -> None:
        """Close the coordinator."""
        await self.coordinator.aclose()
