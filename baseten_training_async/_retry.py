"""Retry policy and decisions: the one module that imports tenacity.

Which failures are retried depends on whether the call is idempotent:

==========================================  ===========  ===============
failure                                      idempotent   not idempotent
==========================================  ===========  ===============
connect error (request never sent)           retry        retry
429 Too Many Requests                        retry        retry
503 Service Unavailable                      retry        retry
any other 5xx (500, 502, 504, 520-524, ...)  retry        no
timeout or disconnect after sending          retry        no
400, 401, 403, 404, 409, 422, other 4xx      no           no
==========================================  ===========  ===============

A wait honours the server's ``Retry-After`` (header or 429 body), otherwise it
is exponential backoff with full jitter, capped. A deadline bounds the time
spent across all attempts of one call. Every wait and every reading of the
time goes through the client's `Clock`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

from ._clock import Clock
from ._errors import (
    APIConnectionError,
    BasetenError,
    InternalServerError,
    InvalidInputError,
    RateLimitError,
    budget_exhausted,
)
from ._limits import FlowControl

__all__ = ["OnRetry", "RetryPolicy", "call_with_retries", "is_retryable"]

logger = logging.getLogger("baseten_training_async")
T = TypeVar("T")

OnRetry = Callable[[int, BaseException, float], Awaitable[None]]
"""Told ``(failed attempt number, its error, seconds until the next)`` before each wait."""

_ALWAYS_RETRYABLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries failed attempts.

    Attributes:
        max_retries: Retries after the first attempt; 0 disables retrying.
        initial_backoff: Upper bound of the first jittered backoff, seconds.
        max_backoff: Cap of any single backoff, seconds.
        max_retry_after: Cap on a server-requested wait, seconds.
        deadline: Seconds after the first attempt started beyond which no
            retry is scheduled; ``None`` for no deadline. A 429 cool-down
            longer than what is left fails the call at once.
    """

    max_retries: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    deadline: float | None = 120.0

    def __post_init__(self) -> None:
        for name in ("max_retries", "initial_backoff", "max_backoff", "max_retry_after"):
            if getattr(self, name) < 0:
                raise InvalidInputError(name, "must not be negative")
        if self.deadline is not None and self.deadline <= 0:
            raise InvalidInputError("deadline", "must be positive or None")
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            if getattr(self, name) != getattr(self, name):  # NaN
                raise InvalidInputError(name, "must be a number")


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` may be retried for a call of the given kind.

    ``CancelledError`` and every non-SDK exception are never retried.
    """
    if isinstance(exc, RateLimitError) and exc.refused_locally:
        return False  # nothing was sent; the wait it needs is more than the call can afford
    if isinstance(exc, RateLimitError | InternalServerError):
        status = exc.status_code
        return status in _ALWAYS_RETRYABLE_STATUSES or (idempotent and status >= 500)
    if isinstance(exc, APIConnectionError):
        return idempotent or not exc.maybe_committed
    return False


def _server_wait(exc: BaseException | None) -> float | None:
    if isinstance(exc, RateLimitError | InternalServerError):
        return exc.retry_after
    return None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    return f"{type(exc).__name__}: {exc}"


class _Attempts:
    """Per-call tenacity hooks. One instance per call: no state is shared."""

    def __init__(
        self,
        policy: RetryPolicy,
        flow: FlowControl,
        idempotent: bool,
        method: str,
        path: str,
        started: float,
        clock: Clock,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.clock = clock
        self.on_retry = on_retry
        self.pending: tuple[int, BaseException, float] | None = None
        self.policy = policy
        self.flow = flow
        self.idempotent = idempotent
        self.method = method
        self.path = path
        self.budget_exhausted = False
        self.started = started

    def should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None or not is_retryable(exc, idempotent=self.idempotent):
            return False
        if isinstance(exc, RateLimitError):
            if exc.refused_locally:
                return False  # the wait it needs is more than the call can afford
            # Server-directed and gated client-wide: no budget spent, but a wait
            # past the call's deadline fails it now, carrying the wait.
            wait = min(exc.retry_after or 0.0, self.policy.max_retry_after)
            return not self._past_deadline(state, wait)
        if state.attempt_number > self.policy.max_retries:
            return False  # out of attempts anyway: do not spend a token
        if not self.flow.budget.try_spend():
            self.budget_exhausted = True
            return False
        return True

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        requested = _server_wait(exc)
        if requested is not None:
            return min(requested, self.policy.max_retry_after)
        ceiling = self.policy.initial_backoff * 2 ** (state.attempt_number - 1)
        return random.uniform(0.0, min(self.policy.max_backoff, ceiling))

    def stop(self, state: RetryCallState) -> bool:
        if state.attempt_number > self.policy.max_retries:
            return True
        return self._past_deadline(state, state.upcoming_sleep)

    def _past_deadline(self, state: RetryCallState, wait: float) -> bool:
        deadline = self.policy.deadline
        if deadline is None:
            return False
        # From the first attempt (which ran before tenacity started); idle_for
        # counts the waits even when a virtual clock does not really wait.
        elapsed = max(self.clock.monotonic() - self.started, state.idle_for)
        return elapsed + wait > deadline

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if logger.isEnabledFor(logging.INFO):
            request_id = getattr(exc, "request_id", None)
            logger.info(
                "retrying %s %s: attempt %d failed (%s)%s; next attempt in %.2fs",
                self.method,
                self.path,
                state.attempt_number,
                _describe(exc),
                f" [request id {request_id}]" if request_id else "",
                state.upcoming_sleep,
            )
        if self.on_retry is not None and exc is not None:
            self.pending = (state.attempt_number, exc, state.upcoming_sleep)

    async def sleep(self, seconds: float) -> None:
        # Tenacity's before_sleep is synchronous; the (possibly async) retry
        # listeners are told here, just before the wait.
        pending, self.pending = self.pending, None
        if pending is not None and self.on_retry is not None:
            await self.on_retry(*pending)
        await self.clock.sleep(seconds)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    flow: FlowControl,
    clock: Clock,
    idempotent: bool,
    method: str,
    path: str,
    on_retry: OnRetry | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or the policy says stop.

    A server-requested wait (429) that would pass the policy's deadline is not
    slept: the call fails at once with that `RateLimitError`.

    The first attempt runs directly: most calls succeed at once, and building
    the tenacity machinery only after a failure keeps it off the hot path.
    Tenacity then replays that failure as its own first attempt, so the
    policy, logging and budget see every attempt.

    ``on_retry`` is awaited before each wait with the failed attempt's
    number, its error and the wait.

    Raises:
        BasetenError: The last attempt's error; also a
            `RetryBudgetExhaustedError` when the client-wide retry budget
            refused a retry.
    """
    started = clock.monotonic()
    try:
        result = await attempt()
    except BasetenError as first_failure:
        if policy.max_retries == 0 or not is_retryable(first_failure, idempotent=idempotent):
            raise
        replay: BasetenError | None = first_failure

        async def again() -> T:
            nonlocal replay
            if replay is not None:
                failure, replay = replay, None
                raise failure
            return await attempt()

        hooks = _Attempts(policy, flow, idempotent, method, path, started, clock, on_retry)
        result = await _retry_after_failure(again, hooks)
    flow.budget.deposit()
    return result


async def _retry_after_failure(attempt: Callable[[], Awaitable[T]], hooks: _Attempts) -> T:
    retrying = AsyncRetrying(
        sleep=hooks.sleep if hooks.on_retry is not None else hooks.clock.sleep,
        stop=hooks.stop,
        wait=hooks.wait,
        retry=hooks.should_retry,
        before_sleep=hooks.before_sleep,
        reraise=True,
    )
    try:
        result: T = await retrying(attempt)
    except BasetenError as exc:
        if hooks.budget_exhausted:
            raise budget_exhausted(exc) from exc
        raise
    return result
