"""Token buckets, one per API key."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token-bucket rate limiting per API key.

    Each key's bucket starts full with ``burst`` tokens and refills at ``rate``
    tokens per second (of ``clock``); a request takes one token.

    Args:
        rate: Tokens per second; must be positive.
        burst: Bucket size; defaults to ``max(1, int(rate))``.
        clock: Monotonic seconds (real time by default, so a client's back-off sleeps
            actually refill the bucket).
    """

    def __init__(self, rate: float, burst: int | None, clock: Callable[[], float]) -> None:
        if rate <= 0:
            raise ValueError("rate_limit must be positive")
        if burst is not None and burst < 1:
            raise ValueError("rate_burst must be at least 1")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, int(rate)))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> float:
        """Take a token for ``key``.

        Args:
            key: The API key (kept in memory only).

        Returns:
            0.0 when a token was taken, otherwise the seconds until one is available.
        """
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()
