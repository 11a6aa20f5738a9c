"""Seeing every request: logging, event hooks and OpenTelemetry spans.

Three ways to watch a client, each free when unused:

- **Logging** under the ``baseten_training_async`` logger: one INFO line per
  retry and per reconciliation, DEBUG lines per request and response (method,
  path, status, duration, attempt, request id; never the API key or a body).
  ``BASETEN_LOG=info`` or ``BASETEN_LOG=debug`` turns it on for programs that
  do not configure logging themselves.
- **Event hooks**: ``AsyncTrainingClient(event_hooks={"retry": [on_retry]})``
  calls each hook (sync or async) with a frozen event: `RequestEvent`,
  `ResponseEvent`, `RetryEvent`, `ReconcileEvent`.
- **OpenTelemetry** (the ``otel`` extra): a span per SDK call with a child
  CLIENT span per HTTP attempt, following the HTTP client semantic
  conventions. The SDK only uses the API; it never configures an exporter.

The request core builds a `Probe` for a call only when one of these is on;
otherwise the call takes the same path as if this module did not exist.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Literal, TypedDict
from urllib.parse import urlencode, urlsplit

from ._clock import Clock
from ._errors import APIConnectionError, APIStatusError, APITimeoutError, InvalidInputError
from ._transport import HTTPRequest, HTTPResponse, Transport

__all__ = [
    "EventHooks",
    "Observer",
    "Probe",
    "ReconcileEvent",
    "ReconcileOutcome",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "configure_logging_from_env",
    "current_scope",
    "logger",
    "report_reconcile",
    "retry_reason",
]

logger = logging.getLogger("baseten_training_async")

ReconcileOutcome = Literal["adopted", "resent", "raised", "duplicate"]
"""What reconciling a create with an unknown outcome ended in."""

_ATTR = "baseten_training"  # prefix of the SDK's own span attributes


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """An attempt is about to be sent.

    Attributes:
        route: The operation, as ``"METHOD /path/{template}"`` (low cardinality,
            good for metrics labels).
        method: The HTTP method.
        url: The absolute URL without the query; it never carries the API key.
        attempt: 1 for a call's first attempt, 2 for its first retry, and so on.
    """

    route: str
    method: str
    url: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """A response arrived (any status; a failed connection has none).

    Attributes:
        route: The operation, as ``"METHOD /path/{template}"``.
        method: The HTTP method.
        url: The absolute URL without the query.
        attempt: Which attempt of the call this answers, from 1.
        status_code: The HTTP status.
        headers: The response headers.
        elapsed: Seconds from sending to the whole body read, on the client's clock.
    """

    route: str
    method: str
    url: str
    attempt: int
    status_code: int
    headers: Mapping[str, str]
    elapsed: float

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id``, if it sent one."""
        return self.headers.get("x-request-id")


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """An attempt failed and another will follow after ``wait`` seconds.

    Attributes:
        route: The operation, as ``"METHOD /path/{template}"``.
        method: The HTTP method.
        url: The absolute URL without the query.
        attempt: The attempt that failed, from 1.
        reason: ``"rate_limited"`` (429), ``"server_error"`` (a 5xx),
            ``"timeout"`` or ``"connection_error"``.
        status_code: The failed attempt's HTTP status, if a response arrived.
        wait: Seconds until the next attempt (a 429's ``Retry-After`` when sent).
        error: The failed attempt's error.
    """

    route: str
    method: str
    url: str
    attempt: int
    reason: str
    status_code: int | None
    wait: float
    error: BaseException


@dataclass(frozen=True, slots=True)
class ReconcileEvent:
    """A create (or recreate) whose outcome was unknown has been settled.

    Attributes:
        outcome: ``"adopted"`` (the job the server made was found by name and
            returned), ``"resent"`` (proven absent; sent again), ``"raised"``
            (could not be settled; ``APIConnectionError(maybe_committed=True)``
            or a committed ``APIResponseValidationError`` follows) or
            ``"duplicate"`` (a second job appeared under the name after a resend).
        project_id: The project.
        name: The job name looked for, if known.
        job_id: The adopted or duplicate job; None for ``resent`` and ``raised``.
        error: The failure that made the outcome unknown.
    """

    outcome: ReconcileOutcome
    project_id: str
    name: str | None
    job_id: str | None
    error: BaseException | None


class EventHooks(TypedDict, total=False):
    """The ``event_hooks`` argument of `AsyncTrainingClient`: lists of callables per event.

    Each callable takes the event and returns None or an awaitable (async
    hooks are awaited in order). A hook that raises is logged at ERROR and
    never changes the outcome of a call.
    """

    request: Sequence[Callable[[RequestEvent], object]]
    response: Sequence[Callable[[ResponseEvent], object]]
    retry: Sequence[Callable[[RetryEvent], object]]
    reconcile: Sequence[Callable[[ReconcileEvent], object]]


_HOOK_KINDS = ("request", "response", "retry", "reconcile")


def retry_reason(exc: BaseException) -> tuple[str, int | None]:
    """Why an attempt failed, as a `RetryEvent` reason and the status if any."""
    if isinstance(exc, APIStatusError):
        return ("rate_limited" if exc.status_code == 429 else "server_error"), exc.status_code
    if isinstance(exc, APITimeoutError):
        return "timeout", None
    if isinstance(exc, APIConnectionError):
        return "connection_error", None
    return type(exc).__name__, None


async def _emit(hooks: tuple[Callable[[Any], object], ...], event: object) -> None:
    for hook in hooks:
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("event hook %r raised; ignored", hook)


# -- tracing ---------------------------------------------------------------------------------


class _Tracing:
    """The OpenTelemetry API, imported only when tracing is on."""

    __slots__ = ("error_status", "kind_client", "set_span_in_context", "status_cls", "tracer")

    def __init__(self, provider: object | None) -> None:
        from opentelemetry import trace

        from ._version import __version__

        source = provider if provider is not None else trace.get_tracer_provider()
        self.tracer = source.get_tracer("baseten_training_async", __version__)  # type: ignore[attr-defined]
        self.kind_client = trace.SpanKind.CLIENT
        self.set_span_in_context = trace.set_span_in_context
        self.status_cls = trace.Status
        self.error_status = trace.StatusCode.ERROR


_TRUE = frozenset({"1", "true", "yes", "on"})


def _tracing(enabled: bool | None, provider: object | None) -> _Tracing | None:
    if enabled is None:
        # Opt-in: a tracer provider given, or BASETEN_TRACING set. Even a no-op
        # span per call costs more CPU than a create's whole budget allows.
        env = os.environ.get("BASETEN_TRACING", "").strip().lower() in _TRUE
        enabled = provider is not None or env
    if not enabled:
        return None
    try:
        return _Tracing(provider)
    except ImportError:
        raise InvalidInputError(
            "tracing",
            "needs OpenTelemetry: install the 'otel' extra (baseten-training-async[otel])",
        ) from None


class CallScope:
    """The span of one SDK call; every attempt under it is a child span."""

    __slots__ = ("rate_limit_wait", "retries", "span", "tracing")

    def __init__(self, tracing: _Tracing, span: Any) -> None:
        self.tracing = tracing
        self.span = span
        self.retries = 0
        self.rate_limit_wait = 0.0

    def attempt_span(self, request: HTTPRequest, template: str, attempt: int) -> Any:
        parts = urlsplit(request.url)
        full = request.url
        if request.params:
            full = f"{full}?{urlencode(request.params)}"
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "url.full": full,
            "url.template": template,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        t = self.tracing
        return t.tracer.start_span(
            f"{request.method} {template}",
            context=t.set_span_in_context(self.span),
            kind=t.kind_client,
            attributes=attributes,
        )

    def end_attempt(self, span: Any, status: int | None, error: BaseException | None) -> None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(self.tracing.status_cls(self.tracing.error_status))
        elif error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(self.tracing.status_cls(self.tracing.error_status, str(error)))
        span.end()

    def retried(self, reason: str, wait: float, attempt: int) -> None:
        self.retries += 1
        if reason == "rate_limited":
            self.rate_limit_wait += wait
        self.span.add_event(
            "retry",
            {f"{_ATTR}.retry.reason": reason, f"{_ATTR}.retry.wait_s": wait, "attempt": attempt},
        )

    def finish(self, error: BaseException | None) -> None:
        span = self.span
        span.set_attribute(f"{_ATTR}.retry_count", self.retries)
        if self.rate_limit_wait:
            span.set_attribute(f"{_ATTR}.rate_limit.wait_s", self.rate_limit_wait)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(self.tracing.status_cls(self.tracing.error_status, str(error)))
        span.end()


# The recording span of the SDK call running in this task; False inside a call that
# is not recorded (so the calls it makes do not try again); None outside any call.
_SCOPE: ContextVar[CallScope | Literal[False] | None] = ContextVar(
    "baseten_training_async_call", default=None
)


# -- the observer ------------------------------------------------------------------------------


class Observer:
    """A client's hooks and tracer; None on the client when neither is configured.

    Args:
        hooks: Callables per event kind.
        tracing: On, off, or (None) on when ``tracer_provider`` is given or
            ``BASETEN_TRACING=1`` is set.
        tracer_provider: An OpenTelemetry ``TracerProvider``; the global one by default.
    """

    __slots__ = ("hooked", "on_reconcile", "on_request", "on_response", "on_retry", "tracing")

    def __init__(
        self,
        hooks: EventHooks | Mapping[str, Sequence[Callable[[Any], object]]] | None,
        *,
        tracing: bool | None = None,
        tracer_provider: object | None = None,
    ) -> None:
        given: Mapping[str, Any] = hooks or {}
        if not isinstance(given, Mapping):
            raise InvalidInputError("event_hooks", "must be a dict of event name to callables")
        for kind, callables in given.items():
            if kind not in _HOOK_KINDS:
                raise InvalidInputError(
                    "event_hooks", f"unknown event {kind!r}; use one of {', '.join(_HOOK_KINDS)}"
                )
            if not isinstance(callables, list | tuple) or not all(callable(c) for c in callables):
                raise InvalidInputError(f"event_hooks[{kind!r}]", "must be a list of callables")
        self.on_request: tuple[Callable[[Any], object], ...] = tuple(given.get("request", ()))
        self.on_response: tuple[Callable[[Any], object], ...] = tuple(given.get("response", ()))
        self.on_retry: tuple[Callable[[Any], object], ...] = tuple(given.get("retry", ()))
        self.on_reconcile: tuple[Callable[[Any], object], ...] = tuple(given.get("reconcile", ()))
        self.tracing = _tracing(tracing, tracer_provider)
        self.hooked = bool(
            self.on_request or self.on_response or self.on_retry or self.on_reconcile
        )

    @property
    def active(self) -> bool:
        """Whether any hook or the tracer is on."""
        return self.hooked or self.tracing is not None

    def call(self, method: str, template: str) -> _CallSpan:
        """A context manager: the span of one SDK call, unless one is open already.

        Attempts made inside it (the call's own, and those of calls it makes,
        such as reconciliation listings) are children of this span.
        """
        return _CallSpan(self.tracing, method, template)


class _CallSpan:
    """Opens a call's span on entry (when tracing records) and ends it on exit."""

    __slots__ = ("method", "scope", "template", "token", "tracing")

    def __init__(self, tracing: _Tracing | None, method: str, template: str) -> None:
        self.tracing = tracing
        self.method = method
        self.template = template
        self.scope: CallScope | None = None
        self.token: Token[CallScope | Literal[False] | None] | None = None

    def __enter__(self) -> None:
        tracing = self.tracing
        if tracing is None or _SCOPE.get() is not None:
            return
        span = tracing.tracer.start_span(f"baseten_training {self.method} {self.template}")
        if not span.is_recording():
            span.end()  # no SDK configured, or not sampled: no attempt spans either
            self.token = _SCOPE.set(False)
            return
        span.set_attribute("http.request.method", self.method)
        span.set_attribute("url.template", self.template)
        self.scope = CallScope(tracing, span)
        self.token = _SCOPE.set(self.scope)

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if self.token is not None:
            _SCOPE.reset(self.token)
        if self.scope is not None:
            self.scope.finish(error)


def current_scope() -> CallScope | None:
    """The recording span of the SDK call running in this task, if any."""
    return _SCOPE.get() or None


# -- one call's attempts -----------------------------------------------------------------------


class Probe:
    """Watches the attempts of one request; built only when something watches."""

    __slots__ = (
        "attempt",
        "clock",
        "method",
        "observer",
        "path",
        "redact",
        "route",
        "scope",
        "template",
        "url",
    )

    def __init__(
        self,
        observer: Observer | None,
        clock: Clock,
        method: str,
        template: str,
        path: str,
        url: str,
        redact: Callable[[str | None], str | None],
    ) -> None:
        self.observer = observer
        self.url = url
        self.redact = redact
        self.clock = clock
        self.method = method
        self.template = template
        self.route = f"{method} {template}"
        self.path = path
        self.attempt = 0
        self.scope = current_scope()

    async def send(self, transport: Transport, request: HTTPRequest) -> HTTPResponse:
        """Send one attempt through ``transport``, telling whoever watches."""
        self.attempt = attempt = self.attempt + 1
        observer = self.observer
        if observer is not None and observer.on_request:
            await _emit(
                observer.on_request, RequestEvent(self.route, self.method, request.url, attempt)
            )
        scope = self.scope
        span = None if scope is None else scope.attempt_span(request, self.template, attempt)
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("request %s %s (attempt %d)", self.method, self.path, attempt)
        started = self.clock.monotonic()
        try:
            response = await transport.send(request)
        except BaseException as exc:
            if debug:
                logger.debug(
                    "failed %s %s after %.3fs (attempt %d): %s",
                    self.method,
                    self.path,
                    self.clock.monotonic() - started,
                    attempt,
                    type(exc).__name__,
                )
            if scope is not None:
                scope.end_attempt(span, None, exc)
            raise
        elapsed = self.clock.monotonic() - started
        if debug:
            logger.debug(
                "response %s %s %d in %.3fs (attempt %d, request id %s)",
                self.method,
                self.path,
                response.status,
                elapsed,
                attempt,
                self.redact(response.headers.get("x-request-id")) or "-",
            )
        if scope is not None:
            scope.end_attempt(span, response.status, None)
        if observer is not None and observer.on_response:
            event = ResponseEvent(
                self.route,
                self.method,
                request.url,
                attempt,
                response.status,
                response.headers,
                elapsed,
            )
            await _emit(observer.on_response, event)
        return response

    async def retrying(self, attempt: int, error: BaseException, wait: float) -> None:
        """Attempt ``attempt`` failed; the next one follows in ``wait`` seconds."""
        reason, status = retry_reason(error)
        if self.scope is not None:
            self.scope.retried(reason, wait, attempt)
        observer = self.observer
        if observer is not None and observer.on_retry:
            event = RetryEvent(
                self.route, self.method, self.url, attempt, reason, status, wait, error
            )
            await _emit(observer.on_retry, event)


async def report_reconcile(observer: Observer | None, event: ReconcileEvent) -> None:
    """Log a reconciliation's outcome at INFO, and tell the hooks and the call's span."""
    if event.outcome != "duplicate" and logger.isEnabledFor(logging.INFO):
        logger.info(
            "reconciled create of %s in project %s: %s%s (the outcome was unknown after %s)",
            repr(event.name) if event.name is not None else "a job",
            event.project_id,
            event.outcome,
            f" job {event.job_id}" if event.job_id else "",
            type(event.error).__name__ if event.error is not None else "an unreadable 2xx",
        )
    scope = current_scope()
    if scope is not None:
        scope.span.set_attribute(f"{_ATTR}.reconcile.outcome", event.outcome)
    if observer is not None and observer.on_reconcile:
        await _emit(observer.on_reconcile, event)


# -- BASETEN_LOG -------------------------------------------------------------------------------

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_configured = False


def configure_logging_from_env(environ: Mapping[str, str] = os.environ) -> None:
    """Apply ``BASETEN_LOG=debug|info`` once per process.

    Sets the ``baseten_training_async`` logger's level, and adds one stderr
    handler only when neither it nor the root logger has a handler (a program
    that configured logging keeps its own output).
    """
    global _configured
    if _configured:
        return
    _configured = True
    value = environ.get("BASETEN_LOG", "").strip().lower()
    level = _LEVELS.get(value)
    if level is None:
        return
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
