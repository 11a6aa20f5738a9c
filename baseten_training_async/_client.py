"""``AsyncTrainingClient``: configuration, session lifecycle and the request pipeline."""

from __future__ import annotations

import ipaddress
import os
import platform
import warnings
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from ._codec import ENCODER, decoder_for, has_control_characters
from ._errors import APIResponseValidationError, InvalidInputError, RateLimitError, body_snippet
from ._errors import status_error as _status_error
from ._http import AIOHTTP_VERSION, QueryParams, Transport
from ._limits import FlowControl, RetryBudget
from ._reconcile import Reconciler
from ._retry import RetryPolicy, call_with_retries
from ._version import __version__
from .resources.jobs import JobsResource
from .resources.projects import ProjectsResource

__all__ = ["DEFAULT_BASE_URL", "AsyncTrainingClient"]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.baseten.co"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def _check_header_value(field: str, value: str) -> str:
    if not value or value != value.strip():
        raise InvalidInputError(field, "must be non-empty, without surrounding whitespace")
    if has_control_characters(value):
        raise InvalidInputError(field, "must not contain control characters (CR, LF, ...)")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("base_url", f"must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInputError("base_url", "must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise InvalidInputError(
            "base_url",
            "plain http would send the API key unencrypted; use https, a loopback host, "
            "or pass allow_insecure_http=True",
        )
    return base_url.rstrip("/")


class _Core:
    """What resources need: the request pipeline and the client's settings."""

    def __init__(
        self,
        transport: Transport,
        flow: FlowControl,
        policy: RetryPolicy,
        timeout: float,
    ) -> None:
        self.transport = transport
        self.flow = flow
        self.policy = policy
        self.timeout = timeout
        # Per core, so that a with_options() view reconciles with its own settings.
        self.reconciler = Reconciler(self)

    async def request(
        self,
        method: str,
        path: str,
        response_type: type[T],
        *,
        body: Any = None,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> T:
        """Send a request with retries and decode its JSON body into ``response_type``.

        ``body`` is a model to encode, or bytes already encoded.
        """
        value, _ = await self.request_with_date(
            method,
            path,
            response_type,
            body=body,
            params=params,
            headers=headers,
            idempotent=idempotent,
        )
        return value

    async def request_with_date(
        self,
        method: str,
        path: str,
        response_type: type[T],
        *,
        body: Any = None,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> tuple[T, str | None]:
        """Like `request`, also returning the response's ``Date`` header."""
        payload = body if body is None or isinstance(body, bytes) else ENCODER.encode(body)
        decoder = decoder_for(response_type)

        async def attempt() -> tuple[T, str | None]:
            await self.flow.acquire()
            try:
                response = await self.transport.send(
                    method, path, params=params, body=payload, headers=headers, timeout=self.timeout
                )
            finally:
                self.flow.release()
            if response.status >= 300:
                error = _status_error(
                    response.status,
                    self.transport.redact(response.body),
                    response.headers,
                    method=method,
                    path=path,
                )
                if isinstance(error, RateLimitError):
                    wait = error.retry_after
                    if wait is not None:
                        wait = min(wait, self.policy.max_retry_after)
                    self.flow.record_rate_limited(wait)
                raise error
            self.flow.record_success()
            try:
                return decoder.decode(response.body), response.headers.get("Date")
            except msgspec.DecodeError as exc:  # ValidationError is a subclass
                snippet = body_snippet(self.transport.redact(response.body))
                raise APIResponseValidationError(
                    f"{method} {path}: unexpected response body ({exc}); body starts {snippet!r}",
                    status_code=response.status,
                    body_snippet=snippet,
                ) from None

        return await call_with_retries(
            attempt,
            policy=self.policy,
            flow=self.flow,
            idempotent=idempotent,
            method=method,
            path=path,
        )


class AsyncTrainingClient:
    """Async client for the Baseten Training API.

    Use it as an async context manager, or call `aclose` when done. One
    client holds one connection pool: share it across tasks rather than
    creating one per call.

    Args:
        api_key: The API key. Defaults to ``$BASETEN_API_KEY``.
        base_url: Defaults to ``$BASETEN_BASE_URL`` or ``https://api.baseten.co``.
        timeout: Seconds allowed for each attempt.
        max_retries: Retries after a failed attempt; 0 disables retrying.
        max_concurrency: Requests in flight at once across the whole client.
        retry_policy: Full control over retries; overrides ``max_retries``.
        retry_budget: The client-wide budget that stops retry storms.
        max_response_bytes: Larger response bodies are refused.
        allow_insecure_http: Allow plain ``http://`` to a non-loopback host.

    Raises:
        InvalidInputError: No API key, or an invalid setting.

    Example:
        >>> async with AsyncTrainingClient() as client:  # doctest: +SKIP
        ...     project = await client.projects.upsert("my-project")
    """

    projects: ProjectsResource
    jobs: JobsResource

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("BASETEN_API_KEY")
        if not key:
            raise InvalidInputError(
                "api_key", "no API key given; pass api_key=... or set BASETEN_API_KEY"
            )
        _check_header_value("api_key", key)
        url = base_url or os.environ.get("BASETEN_BASE_URL") or DEFAULT_BASE_URL
        self._base_url = _check_base_url(url, allow_insecure_http=allow_insecure_http)
        if timeout <= 0:
            raise InvalidInputError("timeout", "must be positive")
        if max_concurrency < 1:
            raise InvalidInputError("max_concurrency", "must be at least 1")
        if max_response_bytes < 1:
            raise InvalidInputError("max_response_bytes", "must be positive")
        policy = retry_policy or RetryPolicy(max_retries=max_retries)
        transport = Transport(
            base_url=self._base_url,
            headers={"Authorization": f"Api-Key {key}", "User-Agent": _user_agent()},
            max_connections=max_concurrency,
            max_response_bytes=max_response_bytes,
            secret=key,
        )
        flow = FlowControl(
            max_concurrency=max_concurrency,
            budget=retry_budget or RetryBudget(),
            sleep=policy.sleep,
        )
        self._owns_transport = True
        self._init_resources(_Core(transport, flow, policy, timeout))

    def _init_resources(self, core: _Core) -> None:
        self._core = core
        self.projects = ProjectsResource(core)
        self.jobs = JobsResource(core)

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._base_url

    @property
    def timeout(self) -> float:
        """Seconds allowed for each attempt."""
        return self._core.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._core.policy

    @property
    def flow_control(self) -> FlowControl:
        """Client-wide concurrency, 429 cool-down and retry-budget state."""
        return self._core.flow

    def with_options(
        self, *, timeout: float | None = None, max_retries: int | None = None
    ) -> AsyncTrainingClient:
        """A view of this client with other per-call settings.

        The view shares the connection pool and flow control; closing either
        closes both.

        Example:
            >>> job = await client.with_options(timeout=5).jobs.retrieve(p, j)  # doctest: +SKIP
        """
        if timeout is not None and timeout <= 0:
            raise InvalidInputError("timeout", "must be positive")
        core = self._core
        policy = core.policy
        if max_retries is not None:
            policy = RetryPolicy(
                max_retries=max_retries,
                initial_backoff=policy.initial_backoff,
                max_backoff=policy.max_backoff,
                max_retry_after=policy.max_retry_after,
                deadline=policy.deadline,
                sleep=policy.sleep,
            )
        view = object.__new__(AsyncTrainingClient)
        view._base_url = self._base_url
        view._owns_transport = False
        view._init_resources(_Core(core.transport, core.flow, policy, timeout or core.timeout))
        return view

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call more than once."""
        await self._core.transport.aclose()

    async def __aenter__(self) -> AsyncTrainingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncTrainingClient(base_url={self._base_url!r}, api_key=<redacted>)"

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and self._owns_transport and core.transport.has_open_session:
            warnings.warn(
                f"{self!r} was never closed; use 'async with' or await client.aclose()",
                ResourceWarning,
                stacklevel=2,
            )


def _user_agent() -> str:
    return (
        f"baseten-training-async/{__version__} "
        f"python/{platform.python_version()} aiohttp/{AIOHTTP_VERSION}"
    )
