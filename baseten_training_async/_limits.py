"""Client-wide flow control shared by every call on one client.

- a concurrency limit, held for the duration of one attempt only (a task
  sleeping in backoff holds no slot);
- a 429 cool-down gate: when any call is told to slow down, new attempts from
  every task wait until the server's ``Retry-After`` has passed, with jitter
  so they do not all return in the same instant;
- a retry budget: a token bucket that each retry spends and each success
  refills, so an API that is down sees a bounded number of retries rather
  than a storm.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

__all__ = ["FlowControl", "RetryBudget"]


class RetryBudget:
    """A token bucket of retries.

    Args:
        capacity: Most retries that can be spent in a burst.
        refill_per_success: Tokens a successful call adds back.
    """

    def __init__(self, capacity: float = 200.0, refill_per_success: float = 0.5) -> None:
        self.capacity = capacity
        self.refill_per_success = refill_per_success
        self.tokens = capacity
        self.spent = 0
        self.refused = 0

    def try_spend(self) -> bool:
        """Take one retry token; False when the bucket is empty."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.spent += 1
            return True
        self.refused += 1
        return False

    def deposit(self) -> None:
        """Credit a successful call."""
        self.tokens = min(self.capacity, self.tokens + self.refill_per_success)


class FlowControl:
    """Concurrency slots, the 429 gate and the retry budget of one client."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        budget: RetryBudget,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self.budget = budget
        self._sleep = sleep
        self._clock = clock
        self._cool_until = 0.0
        self.cooldowns = 0
        self.gate_waits = 0

    def cool_down(self, seconds: float | None) -> None:
        """Hold every new attempt for ``seconds`` (at least a short pause)."""
        self.cooldowns += 1
        wait = 1.0 if seconds is None else max(seconds, 0.05)
        self._cool_until = max(self._cool_until, self._clock() + wait)

    async def _pass_gate(self) -> None:
        while (remaining := (until := self._cool_until) - self._clock()) > 0:
            self.gate_waits += 1
            # Jitter spreads the restart over up to 20% of the wait (<= 1 s).
            jitter = random.uniform(0.0, min(1.0, remaining * 0.2))
            await self._sleep(remaining + jitter)
            if self._cool_until <= until:
                return  # not extended by another 429 while we waited

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the gate, then hold a concurrency slot for one attempt."""
        await self._pass_gate()
        async with self._slots:
            yield
