"""Client-wide flow control shared by every call on one client.

- a concurrency limit, held for the duration of one attempt only (a task
  sleeping in backoff holds no slot);
- a 429 cool-down gate: when any call is told to slow down, new attempts from
  every task wait until the server's ``Retry-After`` has passed, with jitter
  so they do not all return in the same instant;
- adaptive pacing once 429s are frequent (over 10% of recent responses):
  attempts are spaced at a rate just under the
  success rate the server allowed, decreased on each further 429 and raised
  slowly on success (AIMD), so a fan-out of a thousand tasks settles at the
  server's limit instead of bouncing off it;
- a retry budget: a token bucket that each retry spends and each success
  refills, so an API that is down sees a bounded number of retries rather
  than a storm.
"""

from __future__ import annotations

import asyncio
import random

from ._clock import DEFAULT_CLOCK, Clock
from ._errors import RateLimitError

__all__ = ["FlowControl", "RetryBudget"]

_MIN_PACE = 1.0  # attempts per second
_PACING_HOLD = 30.0  # seconds without a 429 before pacing stops
_PACING_TRIGGER = 0.1  # share of recent responses that were 429s before pacing starts
_PACING_MIN_SAMPLE = 50  # responses seen before that share is trusted


def _is_rate_limit(ok: int, limited: int) -> bool:
    """Whether 429s are frequent enough to mean a rate limit is being hit."""
    total = ok + limited
    return (
        total >= _PACING_MIN_SAMPLE
        and limited >= _PACING_MIN_SAMPLE // 10
        and limited / total >= _PACING_TRIGGER
    )


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
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self.budget = budget
        self._sleep = clock.sleep
        self._clock = clock.monotonic
        self._cool_until = 0.0
        # Successes per one-second bucket, to know the rate the server allowed.
        self._bucket_start = 0.0
        self._window_start = 0.0
        self._bucket = (0, 0)  # (successes, 429s) in the current second
        self._previous_bucket = (0, 0)
        self._next_slot = 0.0
        self._last_limited = 0.0
        self._last_decrease = 0.0
        self.pace: float | None = None
        """Attempts per second while pacing after a 429; None when not pacing."""
        self.shared_backoff = True
        """Whether 429s slow the whole client down (gate and pacing)."""
        self.rate_limited = 0
        self.gate_waits = 0

    def _tick(self, now: float) -> None:
        if now - self._bucket_start >= 1.0:
            recent = now - self._bucket_start < 2.0
            self._previous_bucket = self._bucket if recent else (0, 0)
            self._window_start = self._bucket_start if recent else now
            self._bucket_start = now
            self._bucket = (0, 0)

    def record_success(self) -> None:
        """Count a successful response (feeds the pacing estimate)."""
        now = self._clock()
        self._tick(now)
        ok, limited = self._bucket
        self._bucket = (ok + 1, limited)
        if self.pace is not None:
            if now - self._last_limited > _PACING_HOLD:
                self.pace = None  # the limit has not been hit for a while
            else:
                self.pace += 1.0 / self.pace  # additive increase: ~1 req/s per second

    def record_rate_limited(self, retry_after: float | None) -> None:
        """A 429: hold new attempts for ``retry_after``; pace if 429s are frequent."""
        self.rate_limited += 1
        if not self.shared_backoff:
            return
        now = self._clock()
        self._tick(now)
        ok, limited = self._bucket
        self._bucket = (ok, limited + 1)
        self._last_limited = now
        wait = 1.0 if retry_after is None else max(retry_after, 0.01)
        self._cool_until = max(self._cool_until, now + wait)
        if self.pace is None:
            ok += self._previous_bucket[0]
            limited += self._previous_bucket[1]
            if _is_rate_limit(ok, limited + 1):
                # Start just under the success rate the server has been allowing.
                allowed = ok / max(now - self._window_start, 1.0)
                self.pace = max(_MIN_PACE, allowed * 0.95)
                self._last_decrease = now
        elif now - self._last_decrease >= 1.0 and _is_rate_limit(ok, limited + 1):
            # At most one decrease a second, judged on this second's responses only,
            # so 429s already in flight when the pace dropped do not count twice.
            self.pace = max(_MIN_PACE, self.pace * 0.8)
            self._last_decrease = now

    @property
    def in_flight(self) -> int:
        """Attempts holding a concurrency slot right now."""
        return self.max_concurrency - self._slots._value

    def _refuse(self, wait: float) -> RateLimitError:
        return RateLimitError(
            f"the client is cooling down after a 429 for {wait:.2f}s more, "
            "longer than this call's deadline allows",
            retry_after=wait,
            refused_locally=True,
            status_code=429,
        )

    async def _pass_gate(self, deadline: float | None) -> None:
        while (remaining := (until := self._cool_until) - self._clock()) > 0:
            if deadline is not None and self._clock() + remaining > deadline:
                raise self._refuse(remaining)
            self.gate_waits += 1
            # Jitter spreads the restart over up to 20% of the wait (<= 1 s).
            jitter = random.uniform(0.0, min(1.0, remaining * 0.2))
            if deadline is not None:
                jitter = min(jitter, max(0.0, deadline - self._clock() - remaining))
            await self._sleep(remaining + jitter)
            if self._cool_until <= until:
                break  # not extended by another 429 while we waited
        if self.pace is not None:
            now = self._clock()
            interval = 1.0 / self.pace
            slot = max(now, self._next_slot)
            if deadline is not None and slot > deadline:
                raise self._refuse(slot - now)
            self._next_slot = slot + interval
            if slot > now:
                try:
                    await self._sleep(slot - now)
                except asyncio.CancelledError:
                    # Give the reservation back, or cancelled calls push every later one out.
                    self._next_slot = max(self._clock(), self._next_slot - interval)
                    raise

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for the gate and pacing, then take a concurrency slot for one attempt.

        Args:
            deadline: On the client's clock; a gate or pacing wait that would
                pass it raises at once instead of sleeping.

        Raises:
            RateLimitError: The wait the gate asks for exceeds ``deadline``;
                ``retry_after`` is that wait.
        """
        if self.pace is not None or (self._cool_until and self._cool_until > self._clock()):
            await self._pass_gate(deadline)
        await self._slots.acquire()

    def release(self) -> None:
        """Give back the slot taken by `acquire`."""
        self._slots.release()
