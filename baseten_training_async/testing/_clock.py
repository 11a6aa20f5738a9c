"""Controllable time for the fake server."""

from __future__ import annotations

import time

from .._clock import VirtualClock

__all__ = ["FakeClock", "LinkedClock"]


class FakeClock:
    """Wall-clock time (epoch seconds) that tests control.

    A manual clock (the default) only moves when `advance` or `set` is called, so job
    status, log generation and default log windows are fully deterministic. A real-time
    clock (`FakeClock.real`) follows the system clock, optionally sped up; `advance`
    still jumps it forward.

    Args:
        start: Initial epoch seconds. Defaults to the current time rounded down to a
            whole second.

    Example:
        >>> clock = FakeClock(start=1_700_000_000.0)
        >>> clock.advance(5)
        >>> clock.now()
        1700000005.0
    """

    __slots__ = ("_anchor_monotonic", "_offset", "_speed")

    def __init__(self, start: float | None = None) -> None:
        self._offset = float(int(time.time())) if start is None else float(start)
        self._speed = 0.0
        self._anchor_monotonic = time.monotonic()

    @classmethod
    def real(cls, speed: float = 1.0, *, start: float | None = None) -> FakeClock:
        """Create a clock that moves on its own.

        Args:
            speed: Fake seconds per real second (``10.0`` runs jobs ten times faster).
            start: Initial epoch seconds; defaults to the current time.

        Returns:
            A running clock.

        Raises:
            ValueError: ``speed`` is not positive.
        """
        if speed <= 0:
            raise ValueError("speed must be positive")
        clock = cls(time.time() if start is None else start)
        clock._speed = float(speed)
        return clock

    @property
    def speed(self) -> float:
        """Fake seconds per real second (``0.0`` for a manual clock)."""
        return self._speed

    @property
    def is_real(self) -> bool:
        """Whether the clock moves on its own."""
        return self._speed > 0.0

    def now(self) -> float:
        """Return the current fake time.

        Returns:
            Epoch seconds.
        """
        if self._speed:
            return self._offset + (time.monotonic() - self._anchor_monotonic) * self._speed
        return self._offset

    def now_ms(self) -> int:
        """Return the current fake time in epoch milliseconds.

        Returns:
            Integer epoch milliseconds (floor).
        """
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far to move; must not be negative.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a FakeClock cannot go backwards")
        self._offset += float(seconds)

    def set(self, epoch_seconds: float) -> None:
        """Jump to an absolute time (forward only).

        Args:
            epoch_seconds: The new current time.

        Raises:
            ValueError: The new time is earlier than the current time.
        """
        self.advance(epoch_seconds - self.now())

    def __repr__(self) -> str:
        mode = f"real, speed={self._speed}" if self._speed else "manual"
        return f"FakeClock(now={self.now():.3f}, {mode})"


class LinkedClock(VirtualClock):
    """A client clock whose sleeps move a fake server's `FakeClock` too.

    Pass it as ``AsyncTrainingClient(clock=api.linked_clock())``: every wait of
    the client (polls, backoff, deadlines) advances the server's jobs by the
    same amount, so a job that runs for an hour of fake time is waited for in
    milliseconds, and what the client sees matches what the server did.

    Args:
        server: The fake server's clock (a manual one).
    """

    __slots__ = ("server",)

    def __init__(self, server: FakeClock) -> None:
        super().__init__(0.0)
        self.server = server

    async def sleep(self, seconds: float) -> None:
        """Advance both clocks by ``seconds`` and let other tasks run once."""
        self.server.advance(max(0.0, seconds))
        await super().sleep(seconds)
