"""The request core: encode, flow control, transport, status mapping, decode, retries.

Everything that sends a request goes through `Core.request` with a `Route`
from ``_wire.py``. The core sits below every feature and resource and imports
none of them; the client builds one and hands it down.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import msgspec

from ._clock import Clock
from ._codec import ENCODER, decoder_for
from ._dates import parse_http_date
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    RateLimitError,
    body_snippet,
    status_error,
)
from ._limits import FlowControl
from ._observe import Observer, Probe, current_scope, logger
from ._retry import RetryPolicy, call_with_retries
from ._transport import HTTPRequest, QueryParams, Transport
from ._wire import Route

__all__ = ["Core", "Redactor", "RequestOptions", "Response", "SharedLimits", "recording"]

T = TypeVar("T")
_JSON_HEADERS = {"Content-Type": "application/json"}
# A lost response to these cannot have changed anything on the server.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Responses of the calls made by a raw-response view, per task.
_NO_SPAN = contextlib.nullcontext()
_RECORDED: ContextVar[list[Response[Any]] | None] = ContextVar(
    "baseten_training_async_recorded", default=None
)


class Response(msgspec.Struct, Generic[T], frozen=True):
    """A decoded response (a frozen Struct: cheap to build on every call).

    Attributes:
        value: The body, decoded into the route's response type.
        status: The HTTP status.
        headers: The response headers.
    """

    value: T
    status: int
    headers: Mapping[str, str]

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id``, if it sent one."""
        return self.headers.get("x-request-id")

    @property
    def server_time(self) -> datetime | None:
        """The server's clock from the ``Date`` header, if it sent one."""
        return parse_http_date(self.headers.get("Date"))


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Additions to every request of a client view (``client.with_options(...)``).

    Attributes:
        extra_headers: Headers added to (or replacing) the SDK's own.
        extra_query: Query parameters added to every request.
        extra_body: Fields merged into the JSON body of calls that send one
            (objects into objects, anything else replacing); calls without a
            body are left without one.
    """

    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, str | int] | None = None
    extra_body: Mapping[str, object] | None = None

    def merge(self, other: RequestOptions) -> RequestOptions:
        """These options with ``other``'s added on top."""

        def both(
            a: Mapping[str, Any] | None, b: Mapping[str, Any] | None
        ) -> Mapping[str, Any] | None:
            if not a or not b:
                return b or a
            return {**a, **b}

        return RequestOptions(
            both(self.extra_headers, other.extra_headers),
            both(self.extra_query, other.extra_query),
            both(self.extra_body, other.extra_body),
        )


class recording:
    """Collects the responses of calls made in this block by cores with ``record=True``."""

    __slots__ = ("_token", "responses")

    def __init__(self) -> None:
        self.responses: list[Response[Any]] = []

    def __enter__(self) -> recording:
        self._token = _RECORDED.set(self.responses)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _RECORDED.reset(self._token)


class Redactor:
    r"""Blanks a secret out of anything a server may echo back.

    Matches the secret as sent, URL-encoded, JSON-escaped (``\u0073...``,
    found by decoding), and base64-encoded on its own or with its header
    prefix.
    """

    __slots__ = ("_escaped", "_needles", "_secret")

    def __init__(self, secret: str) -> None:
        self._secret = secret
        forms = {secret, quote(secret, safe=""), quote(secret)}
        for text in (secret, f"Api-Key {secret}"):
            raw = base64.b64encode(text.encode()).decode()
            forms.update({raw, raw.rstrip("="), base64.urlsafe_b64encode(text.encode()).decode()})
        self._needles = tuple(sorted((f.encode() for f in forms if f), key=len, reverse=True))
        self._escaped = _escaped_pattern(secret)

    def scrub(self, data: bytes) -> bytes:
        """``data`` with every byte-level form of the secret replaced."""
        for needle in self._needles:
            if needle in data:
                data = data.replace(needle, b"<redacted>")
        if b"\\u" in data:
            data = self._json_escaped(data)
        return data

    def text(self, value: str | None) -> str | None:
        """A string with the secret replaced."""
        if value is None:
            return None
        return self.scrub(value.encode("utf-8", "replace")).decode("utf-8", "replace")

    def _json_escaped(self, data: bytes) -> bytes:
        # A JSON string may spell the key with \uXXXX escapes, wholly or in part.
        return self._escaped.sub(b"<redacted>", data)


def _escaped_pattern(secret: str) -> re.Pattern[bytes]:
    r"""Matches ``secret`` with any of its characters written as a JSON ``\uXXXX`` escape."""
    parts = []
    for char in secret:
        code = f"{ord(char):04x}".encode()
        hex_form = b"".join(b"[" + bytes([c]) + bytes([c]).upper() + b"]" for c in code)
        parts.append(b"(?:" + re.escape(char.encode()) + b"|\\\\u" + hex_form + b")")
    return re.compile(b"".join(parts))


class SharedLimits(Protocol):
    """What the core asks of a coordinator (``coordination.Coordinator`` has it)."""

    async def acquire(self, *, deadline: float | None) -> None:
        """Wait for a shared rate-limit token and any shared 429 cool-down."""
        ...

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """Share a 429's cool-down."""
        ...


@dataclass(slots=True)
class Core:
    """The request pipeline of one client, shared by its views.

    Attributes:
        transport: Sends requests.
        flow: Client-wide concurrency, 429 gate and retry budget.
        policy: Retries.
        clock: Every wait and deadline.
        timeout: Seconds allowed per attempt.
        base_url: The API's base URL, without a trailing slash.
        headers: Headers sent on every request (auth, user agent).
        redactor: Blanks the API key out of what errors quote.
        shared: Limits shared with other clients (a coordinator), checked
            before each attempt; None for none.
        observer: Event hooks and tracing; None when nothing watches.
        options: Extra headers, query and body of a `with_options` view.
        record: Hand responses to an enclosing `recording` (raw-response views).
    """

    transport: Transport
    flow: FlowControl
    policy: RetryPolicy
    clock: Clock
    timeout: float
    base_url: str
    headers: Mapping[str, str]
    redactor: Redactor
    shared: SharedLimits | None = None
    observer: Observer | None = None
    options: RequestOptions | None = None
    record: bool = False
    _json_headers: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._json_headers = {**self.headers, **_JSON_HEADERS}

    def call_deadline(self) -> float | None:
        """When a call starting now must be over, on the clock; None for never.

        No wait of the call (the 429 gate, pacing, a server-requested wait)
        may run past it: one that would fails the call at once instead.
        """
        deadline = self.policy.deadline
        return None if deadline is None else self.clock.monotonic() + deadline

    async def request(
        self,
        route: Route[T],
        path: str,
        *,
        body: msgspec.Struct | None = None,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response[T]:
        """Send ``route`` at ``path`` with retries and decode the response.

        Args:
            route: The operation.
            path: Its escaped path, from ``route.path(...)``.
            body: A request model to send as JSON.
            params: Query parameters.
            headers: Extra headers for this call.

        Raises:
            BasetenError: The call failed; see the error tree.
        """
        with self.call_span(route):
            return await self._request(route, path, body, params, headers)

    def call_span(self, route: Route[Any]) -> AbstractContextManager[object]:
        """The tracing span of one SDK call, or a reusable no-op when not tracing."""
        observer = self.observer
        if observer is not None and observer.tracing is not None:
            return observer.call(route.method, route.template)
        return _NO_SPAN

    async def _request(
        self,
        route: Route[T],
        path: str,
        body: msgspec.Struct | None,
        params: QueryParams | None,
        headers: Mapping[str, str] | None,
    ) -> Response[T]:
        payload = None if body is None else ENCODER.encode(body)
        sent_headers = self._json_headers if payload is not None else self.headers
        options = self.options
        if options is not None:
            params, headers, payload = _with_options(options, params, headers, payload)
        if headers:
            sent_headers = {**sent_headers, **headers}
        url = self.base_url + path
        http = HTTPRequest(route.method, url, params, sent_headers, payload, self.timeout)
        decoder = decoder_for(route.response)
        call_deadline = self.call_deadline()
        observer = self.observer
        probe = None
        if (
            observer is not None and (observer.hooked or current_scope() is not None)
        ) or logger.isEnabledFor(logging.DEBUG):
            probe = Probe(
                observer, self.clock, route.method, route.template, path, url, self.redactor.text
            )

        async def attempt() -> Response[T]:
            if self.shared is not None:
                await self.shared.acquire(deadline=call_deadline)
            await self.flow.acquire(call_deadline)
            try:
                if probe is None:
                    response = await self.transport.send(http)
                else:
                    response = await probe.send(self.transport, http)
            except APIConnectionError as exc:
                if exc.maybe_committed and route.method in _SAFE_METHODS:
                    exc.maybe_committed = False  # a read cannot have taken effect
                raise
            finally:
                self.flow.release()
            status = response.status
            if status >= 300:
                error = status_error(
                    status,
                    self.redactor.scrub(response.body),
                    response.headers,
                    method=route.method,
                    path=path,
                    request_id=self.redactor.text(response.headers.get("x-request-id")),
                )
                if isinstance(error, RateLimitError):
                    wait = error.retry_after
                    if wait is not None:
                        wait = min(wait, self.policy.max_retry_after)
                    self.flow.record_rate_limited(wait)
                    if self.shared is not None:
                        await self.shared.report_rate_limited(wait)
                raise error
            self.flow.record_success()
            try:
                value = decoder.decode(response.body)
            except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is a subclass
                snippet = body_snippet(self.redactor.scrub(response.body))
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                raise APIResponseValidationError(
                    f"{route.method} {path}: unexpected response body ({reason}); "
                    f"body starts {snippet!r}",
                    status_code=status,
                    body_snippet=snippet,
                ) from None
            return Response(value, status, response.headers)

        retried = call_with_retries(
            attempt,
            policy=self.policy,
            flow=self.flow,
            clock=self.clock,
            idempotent=route.idempotent,
            method=route.method,
            path=path,
            on_retry=None if probe is None else probe.retrying,
        )
        result = await retried
        if self.record:
            sink = _RECORDED.get()
            if sink is not None:
                sink.append(result)
        return result


def _with_options(
    options: RequestOptions,
    params: QueryParams | None,
    headers: Mapping[str, str] | None,
    payload: bytes | None,
) -> tuple[QueryParams | None, Mapping[str, str] | None, bytes | None]:
    if options.extra_query:
        params = {**params, **options.extra_query} if params else options.extra_query
    if options.extra_headers:
        headers = {**headers, **options.extra_headers} if headers else options.extra_headers
    if options.extra_body and payload is not None:
        document = msgspec.json.decode(payload)
        if isinstance(document, dict):
            payload = ENCODER.encode(_deep_merge(document, options.extra_body))
    return params, headers, payload


def _deep_merge(base: dict[str, Any], extra: Mapping[str, object]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in: dicts into dicts, anything else replacing."""
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged
