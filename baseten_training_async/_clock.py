"""The one clock every wait and deadline in the SDK goes through.

`SYSTEM_CLOCK` reads `time.monotonic` and sleeps with `asyncio.sleep`. A client
takes another through ``AsyncTrainingClient(clock=...)``; the testing switch
(`baseten_training_async.testing.fake_time`) swaps in a `VirtualClock` for every
client that uses the default, so a 30-minute wait runs in milliseconds while
deadlines still advance.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CLOCK",
    "SYSTEM_CLOCK",
    "Clock",
    "SystemClock",
    "VirtualClock",
    "current_clock",
    "set_clock",
]


@runtime_checkable
class Clock(Protocol):
    """A monotonic time source and a way to wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """Real time: `time.monotonic` and `asyncio.sleep`."""

    __slots__ = ()

    # The C function itself: this is read several times per request.
    monotonic = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        """Sleep with `asyncio.sleep`."""
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that advances only when something sleeps on it.

    A sleep moves the clock forward by its duration and yields to the event
    loop once, so other tasks run but no real time passes. Deadlines measured
    on it advance exactly as the sleeps say.

    Args:
        start: The initial reading.
    """

    __slots__ = ("_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        """Every duration slept, in order."""

    def monotonic(self) -> float:
        """The current fake reading."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` and let other tasks run once."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move the clock forward without sleeping."""
        self._now += max(0.0, seconds)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f})"


SYSTEM_CLOCK: Clock = SystemClock()
_default: list[Clock] = [SYSTEM_CLOCK]


def current_clock() -> Clock:
    """The clock that `DEFAULT_CLOCK` currently stands for."""
    return _default[0]


def set_clock(clock: Clock) -> Clock:
    """Make ``clock`` what `DEFAULT_CLOCK` stands for; returns the previous one."""
    previous, _default[0] = _default[0], clock
    return previous


class _DefaultClock:
    """Delegates to the current default at each call.

    So the testing switch reaches clients built before it was turned on.
    """

    __slots__ = ()

    def monotonic(self) -> float:
        return _default[0].monotonic()

    async def sleep(self, seconds: float) -> None:
        await _default[0].sleep(seconds)

    def __repr__(self) -> str:
        return f"DefaultClock({_default[0]!r})"


DEFAULT_CLOCK: Clock = _DefaultClock()
