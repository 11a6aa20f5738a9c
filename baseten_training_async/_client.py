"""``AsyncTrainingClient``: configuration, session lifecycle and the request pipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import ipaddress
import math
import os
import platform
import warnings
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from ._clock import DEFAULT_CLOCK, Clock
from ._codec import has_control_characters
from ._core import Core, Redactor, RequestOptions, recording
from ._errors import InvalidInputError
from ._http import AIOHTTP_VERSION, AiohttpTransport, SSLSetting
from ._limits import FlowControl, RetryBudget
from ._observe import EventHooks, Observer, configure_logging_from_env
from ._reconcile import Reconciler
from ._retry import RetryPolicy
from ._transport import Transport
from ._version import __version__
from ._watch import PollSettings, StatusPoller
from .coordination import Coordinator, InProcessCoordinator
from .coordination._base import BoundCoordinator
from .resources._base import Resource
from .resources.artifacts import ArtifactsResource
from .resources.capacity import CapacityResource
from .resources.jobs import JobsResource
from .resources.projects import ProjectsResource
from .resources.teams import TeamsResource

__all__ = ["DEFAULT_BASE_URL", "AsyncTrainingClient", "ClientStats", "RawResponse"]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.baseten.co"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_COMMIT_WINDOW = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of what a client has done, for dashboards and tests.

    Attributes:
        reconciliations: Creates whose outcome was unknown and were looked up.
        adopted: Of those, jobs found and returned instead of resent.
        resent: Creates sent again after being proven absent.
        listings: Job listings sent to reconcile.
        lookups: Listings reconciliation asked for; concurrent ones share one request.
        duplicates: (name, job id) of each second job found under a name.
        rate_limited: 429 responses seen.
        gate_waits: Times an attempt waited for the 429 cool-down.
        retries: Retries spent from the retry budget.
        retries_refused: Retries the budget refused.
        in_flight: Attempts in flight right now.
        status_listings: Job listings the shared status poller sent (waits, watches).
        status_lookups: Jobs it fetched one by one (missing from a listing).
    """

    reconciliations: int
    adopted: int
    resent: int
    listings: int
    lookups: int
    duplicates: tuple[tuple[str, str], ...]
    rate_limited: int
    gate_waits: int
    retries: int
    retries_refused: int
    in_flight: int
    status_listings: int = 0
    status_lookups: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class RawResponse(Generic[T]):
    """What ``client.with_raw_response.<resource>.<method>(...)`` returns.

    Attributes:
        value: What the method returns normally (the parsed model, list, ...).
        status_code: The HTTP status of the call's last response.
        headers: That response's headers.
    """

    value: T
    status_code: int
    headers: Mapping[str, str]

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id`` of that response, if it sent one."""
        return self.headers.get("x-request-id")


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
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 -- raises on a port out of range or not a number
    except ValueError as exc:
        raise InvalidInputError("base_url", f"is not a valid URL ({exc}): {base_url!r}") from None
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


def _check_seconds(field: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInputError(
            field, f"must be a positive, finite number of seconds, got {value!r}"
        )
    return float(value)


def _check_count(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(field, f"must be a positive integer, got {value!r}")
    return value


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
        transport: What sends requests; aiohttp by default.
            `baseten_training_async.testing.MockTransport` answers in memory.
        clock: What every wait and deadline uses; real time by default (and
            fake time inside `baseten_training_async.testing.fake_time`).
        commit_window: Seconds after a create's outcome became unknown during
            which the server may still commit it. The create is sent again
            only once it is proven absent after this window.
        on_unknown_outcome: ``"reconcile"`` (default): look a create with an
            unknown outcome up by name, waiting up to ``commit_window``.
            ``"raise"``: raise ``APIConnectionError(maybe_committed=True)``
            at once (``create_many`` always reconciles).
        stop_duplicates: Stop a second job that appears under a name after a
            resend (a server that committed later than ``commit_window``).
        event_hooks: Callables per event, as httpx takes them:
            ``{"request": [...], "response": [...], "retry": [...],
            "reconcile": [...]}``; each is called (or awaited) with a
            `RequestEvent`, `ResponseEvent`, `RetryEvent` or `ReconcileEvent`.
        tracing: OpenTelemetry spans (the ``otel`` extra): ``True`` traces,
            ``False`` never does (nor imports OpenTelemetry); ``None`` (default)
            traces when ``tracer_provider`` is given or ``$BASETEN_TRACING`` is
            ``1``.
        tracer_provider: The OpenTelemetry ``TracerProvider`` to trace with;
            the global one by default.
        proxy: A proxy URL for every request; overrides the environment.
        ssl: An ``ssl.SSLContext``, or the path of a CA bundle, to verify the
            server with.
        trust_env: Honour ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY``.

    Raises:
        InvalidInputError: No API key, or an invalid setting.

    Example:
        >>> async with AsyncTrainingClient() as client:  # doctest: +SKIP
        ...     project = await client.projects.upsert("my-project")
    """

    projects: ProjectsResource
    jobs: JobsResource
    teams: TeamsResource
    capacity: CapacityResource
    artifacts: ArtifactsResource

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
        transport: Transport | None = None,
        clock: Clock | None = None,
        commit_window: float = DEFAULT_COMMIT_WINDOW,
        on_unknown_outcome: Literal["reconcile", "raise"] = "reconcile",
        stop_duplicates: bool = False,
        coordinator: Coordinator | None = None,
        poll: PollSettings | None = None,
        event_hooks: EventHooks | None = None,
        tracing: bool | None = None,
        tracer_provider: object | None = None,
        proxy: str | None = None,
        ssl: SSLSetting = None,
        trust_env: bool = True,
    ) -> None:
        configure_logging_from_env()
        key = api_key if api_key is not None else os.environ.get("BASETEN_API_KEY")
        if not key:
            raise InvalidInputError(
                "api_key", "no API key given; pass api_key=... or set BASETEN_API_KEY"
            )
        _check_header_value("api_key", key)
        url = base_url or os.environ.get("BASETEN_BASE_URL") or DEFAULT_BASE_URL
        base = _check_base_url(url, allow_insecure_http=allow_insecure_http)
        _check_seconds("timeout", timeout)
        _check_count("max_concurrency", max_concurrency)
        _check_count("max_response_bytes", max_response_bytes)
        _check_seconds("commit_window", commit_window)
        if on_unknown_outcome not in ("reconcile", "raise"):
            raise InvalidInputError("on_unknown_outcome", "must be 'reconcile' or 'raise'")
        if transport is not None and not isinstance(transport, Transport):
            raise InvalidInputError("transport", "must have async send(request) and aclose()")
        if coordinator is not None and not isinstance(coordinator, Coordinator):
            raise InvalidInputError(
                "coordinator", "must have bind, acquire, report_rate_limited, lease and aclose"
            )
        if transport is not None and (proxy is not None or ssl is not None):
            raise InvalidInputError("transport", "proxy= and ssl= configure the default transport")
        observer = Observer(event_hooks, tracing=tracing, tracer_provider=tracer_provider)
        clock = clock or DEFAULT_CLOCK
        shared = BoundCoordinator(
            coordinator or InProcessCoordinator(),
            key_fingerprint=hashlib.sha256(key.encode()).hexdigest(),
            clock=clock,
        )
        core = Core(
            transport=transport
            or AiohttpTransport(
                max_connections=max_concurrency,
                max_response_bytes=max_response_bytes,
                trust_env=trust_env,
                proxy=proxy,
                ssl=ssl,
            ),
            flow=FlowControl(
                max_concurrency=max_concurrency, budget=retry_budget or RetryBudget(), clock=clock
            ),
            policy=retry_policy or RetryPolicy(max_retries=max_retries),
            clock=clock,
            timeout=float(timeout),
            base_url=base,
            headers={"Authorization": f"Api-Key {key}", "User-Agent": _user_agent()},
            redactor=Redactor(key),
            shared=shared if coordinator is not None else None,
            observer=observer if observer.active else None,
        )
        reconciler = Reconciler(
            commit_window=commit_window,
            raise_on_unknown=on_unknown_outcome == "raise",
            stop_duplicates=stop_duplicates,
            leases=shared,
        )
        if poll is not None and not isinstance(poll, PollSettings):
            raise InvalidInputError("poll", "must be a PollSettings")
        self._owns_transport = transport is None
        self._attach(core, reconciler, StatusPoller(poll or PollSettings()))

    def _attach(self, core: Core, reconciler: Reconciler, poller: StatusPoller) -> None:
        """The one place a client (or a view of one) gets its state."""
        self._core = core
        self._reconciler = reconciler
        self._poller = poller
        self.projects = ProjectsResource(core, reconciler)
        self.jobs = JobsResource(core, reconciler, poller)
        self.teams = TeamsResource(core, reconciler)
        self.capacity = CapacityResource(core, reconciler)
        self.artifacts = ArtifactsResource(core, reconciler)

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._core.base_url

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

    @property
    def clock(self) -> Clock:
        """The clock every wait and deadline of this client uses."""
        return self._core.clock

    @property
    def poll_settings(self) -> PollSettings:
        """How often waits and watches list job statuses."""
        return self._poller.settings

    @property
    def commit_window(self) -> float:
        """Seconds a create with an unknown outcome may still be committed by the server."""
        return self._reconciler.commit_window

    def stats(self) -> ClientStats:
        """What this client (and its views) have done so far."""
        flow = self._core.flow
        r = self._reconciler.stats
        return ClientStats(
            reconciliations=r.reconciliations,
            adopted=r.adopted,
            resent=r.resent,
            listings=r.listings,
            lookups=r.lookups,
            duplicates=tuple(r.duplicates),
            rate_limited=flow.rate_limited,
            gate_waits=flow.gate_waits,
            retries=flow.budget.spent,
            retries_refused=flow.budget.refused,
            in_flight=flow.in_flight,
            status_listings=self._poller.stats.listings,
            status_lookups=self._poller.stats.lookups,
        )

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> AsyncTrainingClient:
        """A view of this client with other per-call settings.

        The view shares the connection pool, flow control, hooks and
        reconciliation with this client; closing either closes both. Building
        one is cheap: it is also the per-call form of these settings.

        Args:
            timeout: Seconds allowed for each attempt.
            max_retries: Retries after a failed attempt.
            extra_headers: Headers added to every request of the view
                (replacing the SDK's own of the same name).
            extra_query: Query parameters added to every request of the view.
            extra_body: Fields merged into the JSON body of every call that
                sends one (for a field the SDK does not know yet), objects into
                objects: ``{"training_job": {"new_field": 1}}`` adds a field to
                a create's spec. Calls without a body (GET, DELETE,
                reconciliation listings) send none.

        Example:
            >>> job = await client.with_options(timeout=5).jobs.retrieve(p, j)  # doctest: +SKIP
            >>> extra = {"training_job": {"new_field": 1}}
            >>> job = await client.with_options(extra_body=extra).jobs.create(
            ...     p, spec
            ... )  # doctest: +SKIP
        """
        core = self._core
        changes: dict[str, object] = {}
        if timeout is not None:
            changes["timeout"] = _check_seconds("timeout", timeout)
        if max_retries is not None:
            changes["policy"] = dataclasses.replace(core.policy, max_retries=max_retries)
        if extra_headers or extra_query or extra_body:
            added = RequestOptions(
                _checked_headers(extra_headers),
                _checked_mapping("extra_query", extra_query),
                _checked_mapping("extra_body", extra_body),
            )
            changes["options"] = added if core.options is None else core.options.merge(added)
        return self._view(dataclasses.replace(core, **changes))  # type: ignore[arg-type]

    @property
    def with_raw_response(self) -> RawResponseClient:
        """The same methods, returning `RawResponse` (status, headers, request id, value).

        Example:
            >>> raw = await client.with_raw_response.jobs.retrieve(p, j)  # doctest: +SKIP
            >>> raw.status_code, raw.request_id, raw.value.current_status  # doctest: +SKIP
        """
        return RawResponseClient(self._view(dataclasses.replace(self._core, record=True)))

    def _view(self, core: Core) -> AsyncTrainingClient:
        view = AsyncTrainingClient.__new__(AsyncTrainingClient)
        view._owns_transport = False
        view._attach(core, self._reconciler, self._poller)
        return view

    async def aclose(self) -> None:
        """Close the connection pool and the coordinator. Safe to call more than once.

        Waits and watches still running raise `ClientClosedError`.
        """
        try:
            await self._poller.aclose()
            await self._core.transport.aclose()
        finally:
            if self._reconciler.leases is not None:
                await self._reconciler.leases.aclose()

    async def __aenter__(self) -> AsyncTrainingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncTrainingClient(base_url={self._core.base_url!r}, api_key=<redacted>)"

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if (
            core is not None
            and self._owns_transport
            and isinstance(core.transport, AiohttpTransport)
            and core.transport.has_open_session
        ):
            warnings.warn(
                f"{self!r} was never closed; use 'async with' or await client.aclose()",
                ResourceWarning,
                stacklevel=2,
            )


class RawResponseClient:
    """``client.with_raw_response``: each resource's methods, returning `RawResponse`."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncTrainingClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> _RawResource:
        resource = getattr(self._client, name)
        if name.startswith("_") or not isinstance(resource, Resource):
            raise AttributeError(name)
        return _RawResource(resource)


class _RawResource:
    """One resource of a raw-response view; its methods return `RawResponse`."""

    __slots__ = ("_resource",)

    def __init__(self, resource: object) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        member = getattr(self._resource, name)
        if isinstance(member, Resource):  # a nested group, e.g. jobs.sessions
            return _RawResource(member)
        if not callable(member):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            with recording() as seen:
                value = member(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            if not seen.responses:
                raise InvalidInputError(name, "made no request, so it has no raw response")
            last = seen.responses[-1]
            return RawResponse(value, last.status, last.headers)

        call.__name__ = name
        call.__doc__ = member.__doc__
        return call


def _checked_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if not headers:
        return None
    for name, value in _checked_mapping("extra_headers", headers).items():  # type: ignore[union-attr]
        _check_header_value(f"extra_headers[{name!r}]", name)
        if not isinstance(value, str):
            raise InvalidInputError(f"extra_headers[{name!r}]", "must be a string")
        _check_header_value(f"extra_headers[{name!r}]", value)
    return dict(headers)


def _checked_mapping(field: str, value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not value:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(field, "must be a dict with string keys")
    return dict(value)


def _user_agent() -> str:
    return (
        f"baseten-training-async/{__version__} "
        f"python/{platform.python_version()} aiohttp/{AIOHTTP_VERSION}"
    )
