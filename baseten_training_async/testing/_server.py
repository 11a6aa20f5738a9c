"""`FakeTrainingAPI`: the aiohttp.web server, its request pipeline and endpoints."""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web

from ._clock import FakeClock
from ._faults import DEFERRED_KINDS, Fault, FaultKind, FaultSet
from ._models import (
    ACTIVE_STATUSES,
    DEPLOY_FAILED,
    PENDING,
    FakeStats,
    JobTimings,
    LogLine,
    RequestRecord,
    StoredJob,
    StoredProject,
    Team,
)
from ._ratelimit import RateLimiter
from ._routes import Route
from ._schema import SchemaError
from ._spec import Operation, load_spec
from ._store import (
    MAX_TIMEOUT_MINUTES,
    ApiError,
    Outcome,
    Store,
    check_epoch_millis,
    checkpoint_file,
    checkpoint_record,
    default_outcome,
    generated_checkpoint_names,
    iso,
    session_minutes,
)

__all__ = ["FakeTrainingAPI", "LogLineLike"]

LogLineLike = (
    LogLine
    | tuple[int, str]
    | tuple[int, str, str | None]
    | tuple[int, str, str | None, str | None]
)
"""A log line, or a ``(timestamp_ns, message[, level[, replica]])`` tuple."""

_Handler = Callable[["_Call"], dict[str, Any]]
_Result = tuple[int, dict[str, Any], dict[str, str] | None, str]
"""Status, JSON payload, extra headers and the request log's outcome."""
_ENCODE = msgspec.json.encode
_DECODE = msgspec.json.decode
_JSON = "application/json"
_DEFAULT_TEAMS = (("team0dflt", "Default Team", True), ("team1rsch", "Research", False))
_LAST_EPOCH_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
_MAX_STEP_SECONDS = 10 * 365 * 24 * 3600
_DEFAULT_GPU_BASELINE = 8
_DEFAULT_GPU_LIMIT = 64
_MAX_TEAM_GPUS = 1_000_000
_MIB = 1024 * 1024
_MAX_BODY = 16 * _MIB  # larger bodies get 413
_MAX_DEPTH = 64  # JSON nesting; the deepest request schema needs 6
_FAKE_CLOCK_POLL = 0.01  # real seconds between looks at a fake clock with commits due
_STALL_POLL = 0.05  # real seconds between looks at a stalled connection


@dataclass(slots=True)
class _Call:
    """What an endpoint handler needs from a request."""

    path: Mapping[str, str]
    body: dict[str, Any]
    query: dict[str, Any]
    now: float
    fault: Fault | None


class _PendingCommit:
    """An operation a deferred-commit fault holds until its time comes."""

    __slots__ = ("due", "future", "run")

    def __init__(self, run: Callable[[], _Result]) -> None:
        self.run = run
        self.due = 0.0
        self.future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()

    def fire(self) -> None:
        if self.future.done():
            return
        try:
            result = self.run()
        except Exception as exc:  # a fake bug: the waiting handler answers 500
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def abandon(self) -> None:
        """The server stopped or was reset first: the operation never runs."""
        if not self.future.done():
            self.future.cancel()


def _too_deep(value: object) -> bool:
    """Whether a decoded JSON value nests deeper than `_MAX_DEPTH` (iteratively)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > _MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    redacted: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, sep, _ = value.partition(" ")
            value = f"{scheme} <redacted>" if sep else "<redacted>"
        redacted[name] = value
    return redacted


def _seconds_header(seconds: float) -> str:
    value = float(seconds)
    return str(int(value)) if value.is_integer() else repr(value)


def _coerce_line(line: LogLineLike | Mapping[str, Any]) -> LogLine:
    if isinstance(line, LogLine):
        return line
    if isinstance(line, Mapping):
        return LogLine(
            timestamp_ns=int(line["timestamp_ns"]),
            message=str(line["message"]),
            level=line.get("level"),
            replica=line.get("replica"),
        )
    return LogLine(*line)


class FakeTrainingAPI:
    """An in-memory Baseten Training API served by aiohttp.web on localhost.

    Implements all 29 operations of the bundled OpenAPI spec with the real API's
    behaviour where the spec is silent (see the package docs): upsert by name,
    non-idempotent job creation, job status progressing on a `FakeClock`, log windows
    in epoch milliseconds over nanosecond timestamps, offset-paged checkpoint files.
    Request bodies are validated against the spec as the real API does (unknown
    fields accepted and kept, ``null`` taken as absent in optional fields, 4xx for
    every bad input, 413 over 16 MiB, 405 for a wrong method), auth is checked, an
    optional token bucket rate-limits per API key, and faults can be injected
    deterministically.

    Args:
        api_key: The key clients must send as ``Authorization: Api-Key <key>`` or
            ``Authorization: Bearer <key>``.
        seed: Seeds ids and the fault draw; the same seed and request sequence
            give the same ids and the same faults.
        rate_limit: Requests per second per API key (None: no limit).
        rate_burst: Token bucket size (default ``max(1, int(rate_limit))``).
        capacity: Maximum concurrently active jobs; further jobs stay
            ``TRAINING_JOB_PENDING`` until one ends (None: unlimited).
        clock: The fake clock (default: a manual `FakeClock` at the current time).
        host: Interface to bind.
        port: Port to bind (0: a free port).
        timings: Phase durations of jobs.
        outcome: ``outcome(training_job_spec) -> status`` deciding each new job's
            terminal status; default `default_outcome` (names containing ``fail``
            fail, everything else completes).
        log_every: Seconds between generated log lines of running jobs (None: jobs
            only have the lines tests add).
        validate_responses: Check every 200 body against the spec's response schema
            and answer 500 when it does not match (a self-check for tests).
        request_log_limit: Keep at most this many entries in `requests` (None: all).
        rate_clock: Monotonic time source of the rate limiter (default
            `time.monotonic`).

    Example:
        >>> async with FakeTrainingAPI() as api:  # doctest: +SKIP
        ...     async with aiohttp.ClientSession(api.url) as session:
        ...         ...
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key",
        seed: int = 0,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
        capacity: int | None = None,
        clock: FakeClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timings: JobTimings | None = None,
        outcome: Outcome | None = None,
        log_every: float | None = 1.0,
        validate_responses: bool = False,
        request_log_limit: int | None = None,
        rate_clock: Callable[[], float] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if capacity is not None and capacity < 0:
            raise ValueError("capacity must not be negative")
        self._api_key = api_key
        self._seed = seed
        self.clock = clock if clock is not None else FakeClock()
        self._host = host
        self._port = port
        self._timings = timings if timings is not None else JobTimings()
        self._outcome = outcome if outcome is not None else default_outcome
        self._log_every = log_every
        self._capacity = capacity
        self._validate_responses = validate_responses
        self._request_log_limit = request_log_limit
        self._limiter = (
            RateLimiter(rate_limit, rate_burst, rate_clock or time.monotonic)
            if rate_limit is not None
            else None
        )
        self._spec = load_spec()
        self._faults = FaultSet(seed)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._commit_tasks: set[asyncio.Task[None]] = set()
        self._fake_due: list[_PendingCommit] = []
        self._handlers: dict[str, _Handler] = self._handler_table()
        missing = set(Route.ALL) - set(self._handlers)
        assert not missing, f"unhandled routes: {missing}"
        self._init_state()

    def _init_state(self) -> None:
        self._store = Store(
            seed=self._seed,
            capacity=self._capacity,
            timings=self._timings,
            outcome=self._outcome,
            log_every=self._log_every,
        )
        now = self.clock.now()
        for team_id, name, default in _DEFAULT_TEAMS:
            self._store.add_team(name, now, team_id=team_id, default=default)
        self._requests: list[RequestRecord] = []
        self._stats = FakeStats()
        self._request_seq = 0
        self._blob_seq = 0
        self._started_at = now

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on ``host:port`` (idempotent).

        Raises:
            OSError: The address cannot be bound.
        """
        if self._runner is not None:
            return
        app = web.Application(client_max_size=_MAX_BODY)
        for route, handler in self._handlers.items():
            op = self._spec.operations[route]
            app.router.add_route(op.method, op.path, self._endpoint(op, handler))
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop serving and close open connections (idempotent)."""
        runner, self._runner = self._runner, None
        self._url = None
        tasks = self._cancel_commits()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()

    def _cancel_commits(self) -> list[asyncio.Task[None]]:
        tasks = list(self._commit_tasks)
        for task in tasks:
            task.cancel()
        for pending in self._fake_due:
            pending.abandon()
        self._fake_due.clear()
        return tasks

    async def __aenter__(self) -> FakeTrainingAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def reset(self) -> None:
        """Forget all state: projects, jobs, logs, faults, the request log and stats.

        Teams are re-seeded, the id generator and fault draw restart from the seed,
        rate-limit buckets refill, and deferred commits that have not run are dropped.
        The clock and the server keep running.
        """
        self._cancel_commits()
        self._faults.clear()
        self._faults.reseed(self._seed)
        if self._limiter is not None:
            self._limiter.reset()
        self._init_state()

    # -- public state --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``"http://127.0.0.1:54321"``.

        Raises:
            RuntimeError: The server is not started.
        """
        if self._url is None:
            raise RuntimeError("FakeTrainingAPI is not started; use 'async with' or start()")
        return self._url

    @property
    def api_key(self) -> str:
        """The accepted API key."""
        return self._api_key

    @property
    def seed(self) -> int:
        """The seed of ids and fault draws."""
        return self._seed

    @property
    def projects(self) -> dict[str, StoredProject]:
        """Projects by id."""
        return self._store.projects

    @property
    def jobs(self) -> dict[str, StoredJob]:
        """Jobs by id (deleted jobs are removed), in creation order."""
        return self._store.jobs

    @property
    def teams(self) -> dict[str, Team]:
        """Teams by id (two are pre-seeded; the first is the default team)."""
        return self._store.teams

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received, oldest first (``Authorization`` redacted)."""
        return self._requests

    @property
    def stats(self) -> FakeStats:
        """Counters (replaced by `reset`)."""
        return self._stats

    @property
    def faults(self) -> list[Fault]:
        """Registered faults in draw order."""
        return list(self._faults.faults)

    @property
    def capacity(self) -> int | None:
        """Maximum concurrently active jobs (None: unlimited); settable."""
        return self._store.capacity

    @capacity.setter
    def capacity(self, value: int | None) -> None:
        self._capacity = value
        self._store.set_capacity(value, self.clock.now())

    def requests_for(self, route: str) -> list[RequestRecord]:
        """Return the recorded requests of one operation.

        Args:
            route: A `Route` constant.

        Returns:
            Matching records, oldest first.
        """
        return [record for record in self._requests if record.route == route]

    # -- faults ----------------------------------------------------------------------------

    def inject(
        self,
        kind: FaultKind,
        *,
        route: str | Iterable[str] | None = None,
        probability: float = 1.0,
        times: int | None = None,
        **params: Any,
    ) -> Fault:
        """Register a fault.

        Each request draws at most one fault (see `FaultSet.draw`: one uniform draw
        per request against the running sum of matching faults' probabilities, in
        registration order). Kinds and parameters:

        - ``"status"``: answer ``status`` (required) without running the handler.
          429 bodies are ``{"error": ..., "retry_after": N}`` and carry a
          ``Retry-After`` header; params ``retry_after`` (seconds, float allowed,
          default 1 for 429, none otherwise), ``retry_after_header`` (bool, or a raw
          header string), ``retry_after_body`` (bool), ``message``, and ``commit``
          (run the handler first, e.g. a 500 after the job was created).
          Other statuses answer ``{"message": ...}``.
        - ``"latency"``: real ``asyncio.sleep(delay)`` before handling (or, with
          ``commit=True``, after handling and before responding). The handler runs
          even if the client gave up meanwhile, like a real server.
        - ``"drop_before"``: abort the connection before reading the body; nothing
          is committed.
        - ``"drop_after_commit"``: run the handler (state changes) then abort the
          connection without sending a byte.
        - ``"malformed_json"``: 200 with a body that is not JSON (``body`` param);
          the handler runs unless ``commit=False``.
        - ``"truncated_body"``: 200 whose ``Content-Length`` exceeds the bytes sent,
          then the connection closes; the handler runs unless ``commit=False``.
        - ``"repeat_page_token"``: checkpoint_files answers ``next_page_token`` equal
          to the request's ``page_token`` (route defaults to ``CHECKPOINT_FILES``).
        - ``"empty_page"``: checkpoint_files answers an empty page with a non-null
          ``next_page_token`` (route defaults to ``CHECKPOINT_FILES``).

        Deferred commits, the faults of a real network in front of a real server: the
        request is authenticated, read and validated at once, then the operation runs
        ``delay`` seconds later on the server's own schedule, whether or not the
        client is still connected (a client that timed out at 0.3 s still finds the
        job in a listing once ``delay`` has passed). Each takes ``delay`` and
        ``clock``: ``"real"`` (default) counts ``delay`` in real seconds with
        ``asyncio``; ``"fake"`` counts it on the server's `FakeClock`, so the commit
        happens once a test advances the clock past it (a request received after
        that sees it; a fast poll catches clocks that move without requests).
        `pending_commits` and `wait_for_commits` tell a test when they ran, and
        `RequestRecord.committed_at` when each did.

        - ``"late_commit"``: commit after ``delay`` (required), then answer normally.
        - ``"commit_then_drop"``: commit after ``delay`` (default 0), then abort the
          connection without sending a byte.
        - ``"commit_then_stall"``: commit after ``delay`` (default 0), then hold the
          connection open without answering for ``stall`` real seconds (default 30)
          or until the client gives up, then abort it.
        - ``"commit_then_garble"``: commit after ``delay`` (default 0), then answer
          ``status`` (a 2xx, default 200) with ``body`` (default
          ``{"training_job": {"id": 5}}``: JSON that matches no response schema;
          pass e.g. ``body=b"<html>"`` for a body that is not JSON at all).

        Args:
            kind: The fault kind.
            route: A `Route` constant, several, or None for every operation.
            probability: Chance of hitting a matching request, in ``[0, 1]``.
            times: Stop after this many hits (None: unlimited).
            **params: Kind-specific parameters (above).

        Returns:
            A handle; call ``remove()`` or use it as a context manager.

        Example:
            A create that commits 1 s after a client with a 0.3 s timeout gave up::

                api.inject("late_commit", route=Route.CREATE_JOB, delay=1.0, times=1)
        """
        return self._faults.add(
            kind, route=route, probability=probability, times=times, params=params
        )

    def clear_faults(self) -> None:
        """Remove every registered fault."""
        self._faults.clear()

    # -- seeding helpers -------------------------------------------------------------------

    def add_team(self, name: str, *, team_id: str | None = None, default: bool = False) -> Team:
        """Add a team (listed by ``GET /v1/teams``, usable by the team endpoint).

        Args:
            name: Team name.
            team_id: Id (generated when None).
            default: Mark as the default team.

        Returns:
            The team.
        """
        return self._store.add_team(name, self.clock.now(), team_id=team_id, default=default)

    def add_project(self, name: str, *, team_id: str | None = None) -> StoredProject:
        """Upsert a project directly (no HTTP request).

        Args:
            name: Project name.
            team_id: Team to associate (sets ``team_name``).

        Returns:
            The project.
        """
        team = self._store.teams[team_id] if team_id is not None else None
        project, created = self._store.upsert_project(name, self.clock.now(), team)
        self._stats.projects_created += int(created)
        return project

    def add_job(self, project_id: str, training_job: Mapping[str, Any] | None = None) -> StoredJob:
        """Create a job directly (no HTTP request); the spec is validated.

        Args:
            project_id: Owning project.
            training_job: A ``training_job`` object (default: a minimal one).

        Returns:
            The job.

        Raises:
            ValueError: The spec does not match the schema.
        """
        spec = copy.deepcopy(dict(training_job or {"image": {"base_image": "hello-world"}}))
        body = {"training_job": spec}
        validator = self._spec.operations[Route.CREATE_JOB].request_validator
        assert validator is not None
        try:
            validator(body, "")
        except SchemaError as exc:
            raise ValueError(str(exc)) from None
        job = self._store.create_job(self._store.project(project_id), spec, self.clock.now())
        self._stats.jobs_created += 1
        return job

    def job_status(self, job_id: str) -> str:
        """Return a job's current status on the fake clock.

        Args:
            job_id: Job id.

        Returns:
            A ``TRAINING_JOB_*`` status.
        """
        now = self.clock.now()
        self._store.tick(now)
        return self._store.any_job(job_id).status_at(now)

    def force_status(self, job_id: str, status: str) -> None:
        """Pin a job's reported status to any string (unknown values included).

        A status outside the known active set ends the job for capacity purposes.

        Args:
            job_id: Job id.
            status: Status to report from now on.
        """
        self._store.force_status(self._store.any_job(job_id), status, self.clock.now())

    def add_logs(self, job_id: str, lines: Iterable[LogLineLike | Mapping[str, Any]]) -> None:
        """Add log lines to a job and switch off its generated lines.

        After this call the job's logs are exactly the lines added (plus any
        generated before the call); call `generate_logs` to turn generation back on.

        Args:
            job_id: Job id.
            lines: `LogLine` objects or ``(timestamp_ns, message, level, replica)``
                tuples (level and replica optional).
        """
        job = self._store.any_job(job_id)
        job.log_every = None
        self._store.add_logs(job, [_coerce_line(line) for line in lines], replace=False)

    def set_logs(self, job_id: str, lines: Iterable[LogLineLike | Mapping[str, Any]]) -> None:
        """Replace a job's logs with exactly these lines (generation switched off).

        Args:
            job_id: Job id.
            lines: As for `add_logs`.
        """
        job = self._store.any_job(job_id)
        job.log_every = None
        self._store.add_logs(job, [_coerce_line(line) for line in lines], replace=True)

    def generate_logs(self, job_id: str, *, every: float | None = 1.0) -> None:
        """Configure generated log lines for a job.

        While RUNNING, the job logs a ``step N`` INFO line (plus a DEBUG line in the
        same millisecond, and every 5th step a line without level) each ``every``
        fake seconds, with lines at deploy start, run start and the end.

        Args:
            job_id: Job id.
            every: Seconds between steps (None: off).
        """
        self._store.any_job(job_id).log_every = every

    def logs(self, job_id: str) -> list[LogLine]:
        """Return all of a job's log lines up to now (generating due lines).

        Args:
            job_id: Job id.

        Returns:
            Lines sorted by timestamp.
        """
        job = self._store.any_job(job_id)
        now = self.clock.now()
        self._store.tick(now)
        self._store.materialize_logs(job, now)
        return list(job.logs)

    def set_checkpoint_files(
        self, job_id: str, files: int | Sequence[str | Mapping[str, Any]]
    ) -> None:
        """Seed the files served by ``GET .../checkpoint_files``.

        Args:
            job_id: Job id.
            files: A count of generated files, or relative file names, or partial
                ``CheckpointFile`` mappings (missing fields are filled in).
        """
        job = self._store.any_job(job_id)
        seeds = generated_checkpoint_names(files) if isinstance(files, int) else files
        now = self.clock.now()
        job.checkpoint_files = [checkpoint_file(job, i, s, now) for i, s in enumerate(seeds)]

    def set_checkpoints(self, job_id: str, checkpoints: int | Sequence[Mapping[str, Any]]) -> None:
        """Seed the checkpoints served by ``GET .../checkpoints``.

        Args:
            job_id: Job id.
            checkpoints: A count of generated checkpoints, or partial
                ``TrainingJobCheckpointV1`` mappings.
        """
        job = self._store.any_job(job_id)
        seeds: Sequence[Mapping[str, Any]] = (
            [{}] * checkpoints if isinstance(checkpoints, int) else checkpoints
        )
        now = self.clock.now()
        job.checkpoints = [checkpoint_record(job, i, s, now) for i, s in enumerate(seeds)]

    # -- request pipeline ------------------------------------------------------------------

    def _endpoint(self, op: Operation, handler: _Handler) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, op, handler)

        return endpoint

    def _record(self, request: web.Request, route: str | None) -> RequestRecord:
        self._request_seq += 1
        record = RequestRecord(
            request_id=f"fake-req-{self._seed}-{self._request_seq:07d}",
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=_redact(request.headers),
            route=route,
            time=self.clock.now(),
        )
        requests = self._requests
        requests.append(record)
        limit = self._request_log_limit
        if limit is not None and len(requests) > limit + max(1, limit // 10):
            del requests[: len(requests) - limit]
        self._stats.requests += 1
        if route is not None:
            self._stats.routes[route] += 1
        return record

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, None)
        allowed = sorted(
            {op.method for op in self._spec.operations.values() if op.matches(request.path)}
        )
        if allowed:
            message = f"Method {request.method} not allowed on {request.path}"
            headers = {"Allow": ", ".join(allowed)}
            return self._respond(record, 405, {"message": message}, "served", headers)
        message = f"No route for {request.method} {request.path}"
        return self._respond(record, 404, {"message": message}, "served")

    async def _handle(
        self, request: web.Request, op: Operation, handler: _Handler
    ) -> web.StreamResponse:
        record = self._record(request, op.route)
        self._fire_due()
        fault = self._faults.draw(op.route)
        if fault is None:
            status, payload, headers, outcome = await self._serve(
                request, op, handler, record, None
            )
            return self._respond(record, status, payload, outcome, headers)

        kind = fault.kind
        params = fault.params
        record.fault = kind
        self._stats.injected[kind] += 1
        commit = bool(params.get("commit", True))
        if kind == "drop_before":
            return self._drop(request, record, "dropped_before")
        if kind in DEFERRED_KINDS:
            return await self._deferred(request, op, handler, record, fault)
        if kind == "latency" and not commit:
            await asyncio.sleep(float(params["delay"]))
        if kind in ("status", "malformed_json", "truncated_body") and not commit:
            return self._fault_response(request, record, fault, 200, {})

        status, payload, headers, outcome = await self._serve(request, op, handler, record, fault)
        if kind == "drop_after_commit":
            return self._drop(request, record, "dropped_after_commit")
        if kind in ("status", "malformed_json", "truncated_body"):
            return self._fault_response(request, record, fault, status, payload)
        if kind == "latency":
            await asyncio.sleep(float(params["delay"]))
        return self._respond(record, status, payload, outcome, headers)

    async def _serve(
        self,
        request: web.Request,
        op: Operation,
        handler: _Handler,
        record: RequestRecord,
        fault: Fault | None,
    ) -> _Result:
        prepared = await self._prepare(request, op, record, fault)
        if isinstance(prepared, tuple):
            return prepared
        return self._commit(op, handler, prepared, record)

    async def _prepare(
        self, request: web.Request, op: Operation, record: RequestRecord, fault: Fault | None
    ) -> _Call | _Result:
        """Auth, rate limit, body and query: a `_Call` to commit, or the error to answer."""
        key = self._authenticate(request)
        if key is None:
            self._stats.unauthorized += 1
            message = "Invalid or missing API key: send 'Authorization: Api-Key <key>'"
            return 401, {"message": message}, None, "served"
        if self._limiter is not None:
            wait = self._limiter.acquire(key)
            if wait > 0:
                self._stats.rate_limited += 1
                headers = {"Retry-After": str(max(1, math.ceil(wait)))}
                limited = {"error": "rate limited", "retry_after": round(wait, 3)}
                return 429, limited, headers, "rate_limited"
        body: dict[str, Any] = {}
        if op.request_validator is not None:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                message = f"Request body is larger than {_MAX_BODY // _MIB} MiB"
                return 413, {"message": message}, None, "served"
            except Exception:  # the client went away while we waited
                return 400, {"message": "request body could not be read"}, None, "client_gone"
            try:
                decoded = _DECODE(raw) if raw.strip() else {}
                record.body = _DECODE(raw) if raw.strip() else None
            except (msgspec.DecodeError, RecursionError) as exc:
                return 400, {"message": f"Request body is not valid JSON: {exc}"}, None, "served"
            if _too_deep(decoded):
                message = f"Request body is nested more than {_MAX_DEPTH} levels deep"
                return 400, {"message": message}, None, "served"
            try:
                op.request_validator(decoded, "")
            except SchemaError as exc:
                return 400, {"message": f"Invalid request body: {exc}"}, None, "served"
            body = decoded
        query: dict[str, Any] = {}
        if op.query:
            raw_query = request.query
            try:
                for param in op.query:
                    value = raw_query.get(param.name)
                    if value is not None:
                        query[param.name] = param.parse(value)
            except SchemaError as exc:
                return 400, {"message": f"Invalid query parameter: {exc}"}, None, "served"
        return _Call(path=request.match_info, body=body, query=query, now=0.0, fault=fault)

    def _commit(
        self, op: Operation, handler: _Handler, call: _Call, record: RequestRecord
    ) -> _Result:
        """Run the operation now (on the fake clock) and render its answer."""
        now = self.clock.now()
        self._store.tick(now)
        call.now = now
        record.committed_at = now
        try:
            payload = handler(call)
        except ApiError as exc:
            return exc.status, {"message": exc.message}, None, "served"
        except (OverflowError, RecursionError) as exc:
            # A number past what the server can represent (a date beyond year 9999, a
            # float overflow): the real API refuses such input too.
            return 400, {"message": f"Invalid request: value out of range ({exc})"}, None, "served"
        if self._validate_responses:
            try:
                op.response_validator(payload, "")
            except SchemaError as exc:
                message = f"fake produced a response that violates the spec: {exc}"
                return 500, {"message": message}, None, "served"
        return 200, payload, None, "served"

    # -- deferred commits: the operation runs on the server's schedule ---------------------

    async def _deferred(
        self,
        request: web.Request,
        op: Operation,
        handler: _Handler,
        record: RequestRecord,
        fault: Fault,
    ) -> web.StreamResponse:
        prepared = await self._prepare(request, op, record, fault)
        if isinstance(prepared, tuple):
            status, payload, headers, outcome = prepared
            return self._respond(record, status, payload, outcome, headers)
        params = fault.params
        pending = _PendingCommit(lambda: self._commit(op, handler, prepared, record))
        if params["clock"] == "fake":
            pending.due = self.clock.now() + params["delay"]
            self._fake_due.append(pending)
            runner = self._commit_on_fake_clock(pending)
        else:
            runner = self._commit_after(pending, params["delay"])
        task = asyncio.get_running_loop().create_task(runner)
        self._commit_tasks.add(task)
        task.add_done_callback(self._commit_tasks.discard)
        # The commit survives the client going away (and this handler being cancelled).
        status, payload, headers, outcome = await asyncio.shield(pending.future)
        kind = fault.kind
        if kind == "late_commit":
            return self._respond(record, status, payload, outcome, headers)
        if kind == "commit_then_drop":
            return self._drop(request, record, "committed_then_dropped")
        if kind == "commit_then_stall":
            await self._stall(request, float(params["stall"]))
            return self._drop(request, record, "committed_then_stalled")
        record.status = int(params["status"])
        record.outcome = "committed_then_garbled"
        self._stats.statuses[record.status] += 1
        raw = params["body"]
        return web.Response(
            status=record.status,
            body=raw if isinstance(raw, bytes) else str(raw).encode(),
            content_type=_JSON,
            headers={"x-request-id": record.request_id},
        )

    async def _commit_after(self, pending: _PendingCommit, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            pending.fire()
        finally:
            pending.abandon()

    async def _commit_on_fake_clock(self, pending: _PendingCommit) -> None:
        # Requests fire due commits first (`_fire_due`); this covers a clock that moves
        # without requests (advanced by a test, or a real-time clock).
        clock = self.clock
        try:
            while not pending.future.done():
                remaining = pending.due - clock.now()
                if remaining <= 0:
                    self._fire_due()
                    break
                step = remaining / clock.speed if clock.is_real else _FAKE_CLOCK_POLL
                await asyncio.sleep(min(step, _FAKE_CLOCK_POLL))
        finally:
            pending.abandon()

    def _fire_due(self) -> None:
        """Commit every fake-clock deferred commit whose time has come, in due order."""
        if not self._fake_due:
            return
        now = self.clock.now()
        due = sorted((p for p in self._fake_due if p.due <= now), key=lambda p: p.due)
        for pending in due:
            self._fake_due.remove(pending)
            pending.fire()

    async def _stall(self, request: web.Request, seconds: float) -> None:
        """Hold the connection open without answering, until ``seconds`` or the client leaves."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            transport = request.transport
            remaining = deadline - loop.time()
            if transport is None or transport.is_closing() or remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _STALL_POLL))

    @property
    def pending_commits(self) -> int:
        """Operations held by deferred-commit faults that have not run yet."""
        return sum(1 for task in self._commit_tasks if not task.done())

    async def wait_for_commits(self, timeout: float | None = None) -> None:
        """Wait until every deferred commit (real-time ones; fake-clock ones once due) ran.

        Args:
            timeout: Give up after this many real seconds (None: no limit).

        Raises:
            TimeoutError: Commits are still pending after ``timeout``.
        """
        tasks = [task for task in self._commit_tasks if not task.done()]
        if tasks:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*tasks)

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("api-key", "bearer"):
            return None
        token = token.strip()
        return token if token == self._api_key else None

    def _respond(
        self,
        record: RequestRecord,
        status: int,
        payload: Mapping[str, Any],
        outcome: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        record.status = status
        record.outcome = outcome
        if outcome == "served":
            self._stats.served += 1
        self._stats.statuses[status] += 1
        # The Date header follows the fake clock, like created_at and log times do.
        response_headers = {
            "x-request-id": record.request_id,
            "Date": formatdate(self.clock.now(), usegmt=True),
        }
        if headers:
            response_headers.update(headers)
        return web.Response(
            status=status, body=_ENCODE(payload), content_type=_JSON, headers=response_headers
        )

    def _drop(self, request: web.Request, record: RequestRecord, outcome: str) -> web.Response:
        record.outcome = outcome
        record.status = None
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Never sent: writing to the aborted transport fails and aiohttp treats it as a
        # client disconnect.
        return web.Response(status=500)

    def _fault_response(
        self,
        request: web.Request,
        record: RequestRecord,
        fault: Fault,
        status: int,
        payload: Mapping[str, Any],
    ) -> web.Response:
        params = fault.params
        if fault.kind == "status":
            code = int(params["status"])
            retry_after = params["retry_after"]
            message = params["message"]
            headers: dict[str, str] = {}
            body: dict[str, Any]
            if code == 429:
                body = {"error": message or "Too many requests (injected)"}
                if retry_after is not None and params["retry_after_body"]:
                    body["retry_after"] = retry_after
            else:
                body = {"message": message or f"Injected {code} error"}
            header = params["retry_after_header"]
            if retry_after is not None and header:
                headers["Retry-After"] = (
                    header if isinstance(header, str) else _seconds_header(retry_after)
                )
            return self._respond(record, code, body, f"injected_{code}", headers)
        if fault.kind == "malformed_json":
            record.status = 200
            record.outcome = "malformed_json"
            self._stats.statuses[200] += 1
            raw = params["body"]
            return web.Response(
                status=200,
                body=raw if isinstance(raw, bytes) else str(raw).encode(),
                content_type=_JSON,
                headers={"x-request-id": record.request_id},
            )
        # truncated_body: promise the full body, send half of it, close.
        record.status = 200
        record.outcome = "truncated_body"
        self._stats.statuses[200] += 1
        full = _ENCODE(payload) if payload else b'{"detail": "this body is cut short"}'
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {_JSON}\r\n"
            f"Content-Length: {len(full)}\r\n"
            f"x-request-id: {record.request_id}\r\n"
            "\r\n"
        ).encode()
        transport = request.transport
        if transport is not None:
            transport.write(head + full[: len(full) // 2])
            transport.close()
        return web.Response(status=500)  # never sent: the transport is closing

    # -- endpoint handlers ------------------------------------------------------------------

    def _handler_table(self) -> dict[str, _Handler]:
        return {
            Route.LIST_TEAMS: self._list_teams,
            Route.UPSERT_TEAM_PROJECT: self._upsert_team_project,
            Route.LIST_PROJECTS: self._list_projects,
            Route.UPSERT_PROJECT: self._upsert_project,
            Route.GET_PROJECT: self._get_project,
            Route.DELETE_PROJECT: self._delete_project,
            Route.CACHE_SUMMARY: self._cache_summary,
            Route.LIST_JOBS: self._list_jobs,
            Route.CREATE_JOB: self._create_job,
            Route.GET_JOB: self._get_job,
            Route.DELETE_JOB: self._delete_job,
            Route.UPDATE_JOB: self._update_job,
            Route.DOWNLOAD_JOB: self._download_job,
            Route.RECREATE_JOB: self._recreate_job,
            Route.GET_LOGS: self._get_logs_query,
            Route.POST_LOGS: self._get_logs_body,
            Route.GET_METRICS: self._get_metrics_query,
            Route.POST_METRICS: self._get_metrics_body,
            Route.STOP_JOB: self._stop_job,
            Route.CHECKPOINTS: self._checkpoints,
            Route.CHECKPOINT_FILES: self._checkpoint_files,
            Route.AUTH_CODES: self._auth_codes,
            Route.PATCH_INTERACTIVE_SESSION: self._patch_session,
            Route.SSH_SIGN: self._ssh_sign,
            Route.SEARCH_JOBS: self._search_jobs,
            Route.CAPACITY: self._gpu_capacity,
            Route.SET_CAPACITY: self._set_gpu_capacity,
            Route.QUEUE_CONTEXT: self._queue_context,
            Route.BLOB_CREDENTIALS: self._blob_credentials,
        }

    def _job_of(self, call: _Call) -> StoredJob:
        return self._store.job(call.path["training_project_id"], call.path["training_job_id"])

    def _list_teams(self, call: _Call) -> dict[str, Any]:
        name = call.query.get("name")
        teams = [
            {"id": t.id, "name": t.name, "default": t.default, "created_at": iso(t.created_at)}
            for t in self._store.teams.values()
            if name is None or t.name == name
        ]
        return {"teams": teams}

    def _upsert(self, call: _Call, team: Team | None) -> dict[str, Any]:
        name = call.body["training_project"]["name"]
        if not name.strip():
            raise ApiError(400, "Invalid request body: training_project.name: must not be empty")
        project, created = self._store.upsert_project(name, call.now, team)
        self._stats.projects_created += int(created)
        return {"training_project": self._store.render_project(project, call.now)}

    def _upsert_project(self, call: _Call) -> dict[str, Any]:
        return self._upsert(call, None)

    def _upsert_team_project(self, call: _Call) -> dict[str, Any]:
        team_id = call.path["team_id"]
        team = self._store.teams.get(team_id)
        if team is None:
            raise ApiError(404, f"Team {team_id!r} not found")
        return self._upsert(call, team)

    def _list_projects(self, call: _Call) -> dict[str, Any]:
        store = self._store
        return {
            "training_projects": [
                store.render_project(project, call.now) for project in store.projects.values()
            ]
        }

    def _get_project(self, call: _Call) -> dict[str, Any]:
        project = self._store.project(call.path["training_project_id"])
        return {"training_project": self._store.render_project(project, call.now)}

    def _delete_project(self, call: _Call) -> dict[str, Any]:
        project = self._store.project(call.path["training_project_id"])
        stopped = sum(
            1
            for job_id in project.job_ids
            if job_id in self._store.jobs
            and self._store.jobs[job_id].status_at(call.now) in ACTIVE_STATUSES
        )
        self._store.delete_project(project, call.now)
        self._stats.jobs_stopped += stopped
        return {"id": project.id, "deleted": True}

    def _cache_summary(self, call: _Call) -> dict[str, Any]:
        project = self._store.project(call.path["training_project_id"])
        latest = self._store.latest_job(project)
        files: list[dict[str, Any]] = []
        if latest is not None:
            modified = iso(latest.created_at)
            files = [
                {
                    "path": "huggingface/hub",
                    "size_bytes": 4096,
                    "modified": modified,
                    "file_type": "directory",
                    "permissions": "drwxr-xr-x",
                },
                {
                    "path": "huggingface/hub/models--fake--model/model.safetensors",
                    "size_bytes": 268_435_456,
                    "modified": modified,
                    "file_type": "file",
                    "permissions": "-rw-r--r--",
                },
            ]
        return {"timestamp": iso(call.now), "project_id": project.id, "file_summaries": files}

    def _list_jobs(self, call: _Call) -> dict[str, Any]:
        store = self._store
        project = store.project(call.path["training_project_id"])
        jobs = [store.render_job(store.jobs[i], call.now) for i in project.job_ids]
        return {"training_project": store.render_project(project, call.now), "training_jobs": jobs}

    def _create_job(self, call: _Call) -> dict[str, Any]:
        project = self._store.project(call.path["training_project_id"])
        job = self._store.create_job(project, call.body["training_job"], call.now)
        self._stats.jobs_created += 1
        return {"training_job": self._store.render_job(job, call.now)}

    def _get_job(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        project = self._store.projects[job.project_id]
        return {
            "training_project": self._store.render_project(project, call.now),
            "training_job": self._store.render_job(job, call.now),
        }

    def _delete_job(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        if self._store.delete_job(job, call.now):
            self._stats.jobs_stopped += 1
        return {"id": job.id, "deleted": True, "training_project_id": job.project_id}

    def _update_job(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        self._store.update_job(
            job,
            call.now,
            priority=call.body.get("priority"),
            availability_model=call.body.get("availability_model"),
        )
        return {"training_job": self._store.render_job(job, call.now)}

    def _download_job(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        base = f"https://fake-s3.baseten.invalid/artifacts/{job.id}"
        runtime = job.spec.get("runtime") or {}
        artifacts = runtime.get("artifacts") or []
        urls = [f"{base}/{a['s3_key']}?X-Amz-Signature=fake" for a in artifacts]
        return {"artifact_presigned_urls": urls or [f"{base}/training_job.tgz?X-Amz-Signature=f"]}

    def _recreate_job(self, call: _Call) -> dict[str, Any]:
        source = self._job_of(call)
        project = self._store.projects[source.project_id]
        job = self._store.create_job(
            project, copy.deepcopy(source.spec), call.now, recreated_from=source.id
        )
        self._stats.jobs_created += 1
        self._stats.jobs_recreated += 1
        return {"training_job": self._store.render_job(job, call.now)}

    def _logs(self, call: _Call, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._job_of(call)
        check_epoch_millis(params)
        lines = self._store.query_logs(
            job,
            call.now,
            start_ms=params.get("start_epoch_millis"),
            end_ms=params.get("end_epoch_millis"),
            limit=params.get("limit"),
            direction=params.get("direction"),
            min_level=params.get("min_level"),
        )
        return {"logs": [line.to_json() for line in lines]}

    def _get_logs_query(self, call: _Call) -> dict[str, Any]:
        return self._logs(call, call.query)

    def _get_logs_body(self, call: _Call) -> dict[str, Any]:
        return self._logs(call, call.body)

    def _get_metrics_query(self, call: _Call) -> dict[str, Any]:
        return self._metrics(call, call.query)

    def _get_metrics_body(self, call: _Call) -> dict[str, Any]:
        return self._metrics(call, call.body)

    def _metrics(self, call: _Call, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._job_of(call)
        check_epoch_millis(params)
        end_ms = params.get("end_epoch_millis")
        end_ms = int(call.now * 1000) if end_ms is None else end_ms
        start_ms = params.get("start_epoch_millis")
        start_ms = end_ms - 30 * 60 * 1000 if start_ms is None else start_ms
        if start_ms > end_ms:
            raise ApiError(400, "start_epoch_millis must not be after end_epoch_millis")
        step = params.get("step_seconds")
        if step is None:
            step = max(1, (end_ms - start_ms) // 1000 // 60)
        if not 0 < step <= _MAX_STEP_SECONDS:
            raise ApiError(
                400, f"step_seconds: must be between 1 and {_MAX_STEP_SECONDS}, got {step}"
            )
        times: list[float] = []
        if job.released_at is not None and job.outcome != DEPLOY_FAILED:
            timings = job.timings
            run_start = job.released_at + timings.created + timings.deploying
            run_end = min(call.now, job.end_at or call.now)
            lo = max(start_ms / 1000, run_start)
            hi = min(end_ms / 1000, run_end)
            if lo <= hi:
                count = min(1000, int((hi - lo) // step) + 1)
                times = [lo + k * step for k in range(count)]
        itype = job.instance_type
        gpu_count = int(itype["gpu_count"])
        gpu_mem = (itype["gpu_memory_limit_mib"] or 16_384) * _MIB
        cpu_mem = int(itype["memory_limit_mib"]) * _MIB
        cores = int(itype["millicpu_limit"]) / 1000

        stamps = [iso(t) for t in times]
        steps = range(len(times))

        def series(values: Iterable[float]) -> list[dict[str, Any]]:
            return [{"value": v, "timestamp": ts} for v, ts in zip(values, stamps, strict=False)]

        storage = {
            "usage_bytes": series(float(5_000_000_000 + 10_000_000 * k) for k in steps),
            "utilization": series(0.05 + 0.0001 * k for k in steps),
        }

        def node_metrics(node: int) -> dict[str, Any]:
            return {
                "gpu_memory_usage_bytes": {
                    str(i): series(gpu_mem * (0.6 + 0.02 * ((k + i) % 5)) for k in steps)
                    for i in range(gpu_count)
                },
                "gpu_utilization": {
                    str(i): series(0.8 + 0.15 * math.sin((k + i + node) / 3) for k in steps)
                    for i in range(gpu_count)
                },
                "cpu_usage": series(cores * (0.5 + 0.1 * math.cos(k / 4)) for k in steps),
                "cpu_memory_usage_bytes": series(cpu_mem * (0.4 + 0.01 * (k % 10)) for k in steps),
                "ephemeral_storage": storage,
            }

        runtime = job.spec.get("runtime") or {}
        cache_config = runtime.get("cache_config") or {}
        cache_on = bool(cache_config.get("enabled") or runtime.get("enable_cache"))
        leader = node_metrics(0)
        return {
            **leader,
            "training_job": self._store.render_job(job, call.now),
            "cache": storage if cache_on else None,
            "per_node_metrics": [
                {"node_id": f"{job.id}-node-{n}", "metrics": node_metrics(n)}
                for n in range(job.node_count)
            ],
        }

    def _stop_job(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        if self._store.stop_job(job, call.now):
            self._stats.jobs_stopped += 1
        return {"training_job": self._store.render_job(job, call.now)}

    def _checkpoints(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        return {
            "training_job": self._store.render_job(job, call.now),
            "checkpoints": list(job.checkpoints),
        }

    def _checkpoint_files(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        size = int(call.query.get("page_size", 1000))
        token = int(call.query.get("page_token", 0))
        files = job.checkpoint_files
        total = len(files)
        kind = call.fault.kind if call.fault is not None else None
        if kind == "empty_page":
            return {"presigned_urls": [], "next_page_token": token + size, "total_count": total}
        page = files[token : token + size]
        next_token: int | None = token + size if token + size < total else None
        if kind == "repeat_page_token":
            next_token = token
        return {"presigned_urls": page, "next_page_token": next_token, "total_count": total}

    def _auth_codes(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        codes = []
        for index, session in enumerate(job.sessions.values()):
            codes.append(
                {
                    "session_id": session["id"],
                    "replica_id": f"g00r{index}",
                    "auth_code": session["auth_code"],
                    "auth_url": session["auth_url"],
                    "generated_at": session["auth_code_generated_at"],
                    "tunnel_name": session["tunnel_name"],
                    "expires_at": session["expires_at"],
                    "working_directory": session["working_directory"],
                }
            )
        return {"auth_codes": codes}

    def _patch_session(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        session_id = call.path["session_id"]
        session = job.sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"Interactive session {session_id!r} not found")
        changes: list[str] = []
        trigger = call.body.get("trigger")
        minutes = call.body.get("timeout_minutes")
        changes_trigger = trigger is not None and trigger != session["trigger"]
        if changes_trigger and session["trigger"] == "on_startup":
            raise ApiError(400, "trigger: cannot be changed for an 'on_startup' session")
        if minutes is not None:
            if minutes == 0 or not -1 <= minutes <= MAX_TIMEOUT_MINUTES:
                raise ApiError(
                    400,
                    "timeout_minutes: must be -1 (no timeout) or 1.."
                    f"{MAX_TIMEOUT_MINUTES}, got {minutes}",
                )
            added = session_minutes(minutes)
            if session["trigger"] == "on_startup":
                expires = datetime.fromisoformat(session["expires_at"]).timestamp() + 60 * added
                if expires > _LAST_EPOCH_SECOND:
                    raise ApiError(400, "timeout_minutes: the session would expire after 9999")
            elif session["timeout_minutes"] + added > MAX_TIMEOUT_MINUTES:
                raise ApiError(
                    400, f"timeout_minutes: the total would exceed {MAX_TIMEOUT_MINUTES} minutes"
                )
        if changes_trigger:
            session["trigger"] = trigger
            changes.append(f"trigger={trigger}")
        if minutes is not None:
            if session["trigger"] == "on_startup":
                session["expires_at"] = iso(expires)
                changes.append(f"expires_at+={added}m")
            else:
                session["timeout_minutes"] += added
                changes.append(f"timeout_minutes+={added}")
        message = "Updated " + ", ".join(changes) if changes else "No changes"
        return {"interactive_session": dict(session), "message": message}

    def _ssh_sign(self, call: _Call) -> dict[str, Any]:
        job = self._job_of(call)
        public_key = call.body["public_key"]
        if not public_key.strip():
            raise ApiError(400, "Invalid request body: public_key: must not be empty")
        return {
            "ssh_certificate": f"ssh-ed25519-cert-v01@openssh.com AAAAfake{job.id} fake-cert",
            "jwt": f"eyJhbGciOiJFUzI1NiJ9.eyJqb2IiOiJ{job.id}In0.fake-signature",
            "proxy_address": "ssh.fake.baseten.invalid:2222",
            "ssh_cert_expires_at": iso(call.now + 3600),
        }

    def _search_jobs(self, call: _Call) -> dict[str, Any]:
        body = call.body
        order_by = body.get("order_by") or []
        descending = True
        for index, order in enumerate(order_by):
            if order["field"] != "created_at":
                raise ApiError(400, f"order_by[{index}].field: only 'created_at' is supported")
            if order["order"] not in ("asc", "desc"):
                raise ApiError(400, f"order_by[{index}].order: must be 'asc' or 'desc'")
            descending = order["order"] == "desc"
        project_id = body.get("project_id")
        job_id = body.get("job_id")
        statuses = body.get("statuses")
        wanted = set(statuses) if statuses is not None else None
        selected = []
        for job in self._store.jobs.values():
            if project_id is not None and job.project_id != project_id:
                continue
            if job_id is not None and job.id != job_id:
                continue
            if wanted is not None and job.status_at(call.now) not in wanted:
                continue
            selected.append(job)
        selected.sort(key=lambda job: (job.created_at, job.seq), reverse=descending)
        return {"training_jobs": [self._store.render_job(job, call.now) for job in selected]}

    def _gpu_usage(self, now: float) -> dict[str, tuple[int, int]]:
        """GPUs in use by released active jobs, by GPU type: (dedicated, spot)."""
        usage: dict[str, tuple[int, int]] = {"H100": (0, 0)}
        for job in self._store.jobs.values():
            if job.gpu_type is not None:
                usage.setdefault(job.gpu_type, (0, 0))
        for job in self._store.active_jobs():
            if job.gpu_type is not None and job.status_at(now) != PENDING:
                dedicated, spot = usage[job.gpu_type]
                if job.availability_model == "spot":
                    spot += job.total_gpus
                else:
                    dedicated += job.total_gpus
                usage[job.gpu_type] = (dedicated, spot)
        return usage

    def _team_capacity(
        self, team: Team, gpu: str, usage: Mapping[str, tuple[int, int]]
    ) -> dict[str, Any]:
        dedicated, spot = usage.get(gpu, (0, 0))
        limit = self._store.team_gpu_limits.get((team.id, gpu), _DEFAULT_GPU_LIMIT)
        return {
            "team_id": team.id,
            "team_name": team.name,
            "gpu_type": gpu,
            "baseline": min(_DEFAULT_GPU_BASELINE, limit),
            "limit": limit,
            "usage_count": dedicated + spot,
            "dedicated_usage_count": dedicated,
            "spot_usage_count": spot,
        }

    def _gpu_capacity(self, call: _Call) -> dict[str, Any]:
        usage = self._gpu_usage(call.now)
        default_team = next(iter(self._store.teams.values()), None)
        team_rows = []
        for team in self._store.teams.values():
            gpus = {gpu for team_id, gpu in self._store.team_gpu_limits if team_id == team.id}
            if team is default_team:
                gpus |= set(usage)
            team_rows += [self._team_capacity(team, gpu, usage) for gpu in sorted(gpus)]
        return {
            "gpu_capacities": [
                {
                    "gpu_type": gpu,
                    "baseline": _DEFAULT_GPU_BASELINE,
                    "limit": _DEFAULT_GPU_LIMIT,
                    "usage_count": dedicated + spot,
                    "dedicated_usage_count": dedicated,
                    "spot_usage_count": spot,
                }
                for gpu, (dedicated, spot) in sorted(usage.items())
            ],
            "team_gpu_capacities": team_rows,
        }

    def _set_gpu_capacity(self, call: _Call) -> dict[str, Any]:
        body = call.body
        team = self._store.teams.get(body["team_id"])
        if team is None:
            raise ApiError(404, f"Team {body['team_id']!r} not found")
        gpu = body["gpu_type"]
        if not gpu.strip():
            raise ApiError(400, "gpu_type: must not be empty")
        max_gpus = body["max_gpus"]
        if not 0 <= max_gpus <= _MAX_TEAM_GPUS:
            raise ApiError(400, f"max_gpus: must be between 0 and {_MAX_TEAM_GPUS}, got {max_gpus}")
        self._store.team_gpu_limits[(team.id, gpu)] = max_gpus
        return {"team_gpu_capacity": self._team_capacity(team, gpu, self._gpu_usage(call.now))}

    def _queue_context(self, call: _Call) -> dict[str, Any]:
        job = self._store.any_job(call.path["training_job_id"])
        now = call.now
        submitted = job.created_at
        released = (
            job.released_at if job.released_at is not None and job.released_at <= now else None
        )
        window_end = released if released is not None else now
        gpu_type = job.gpu_type or "CPU"
        same_pool = [
            other
            for other in self._store.jobs.values()
            if other.id != job.id and (other.gpu_type or "CPU") == gpu_type and other.seq < job.seq
        ]
        active_at_submit = []
        pending_ahead = []
        for other in same_pool:
            status = other.status_at(submitted)
            if status not in ACTIVE_STATUSES:
                continue
            if status == PENDING:
                if (other.priority, -other.seq) > (job.priority, -job.seq):
                    pending_ahead.append(
                        {
                            "training_job_id": other.id,
                            "training_job_name": other.name,
                            "instance_type_name": other.instance_type["name"],
                            "requested_gpus": other.total_gpus,
                            "priority": other.priority,
                            "submitted_at": iso(other.created_at),
                        }
                    )
                continue
            active_at_submit.append(
                {
                    "training_job_id": other.id,
                    "training_job_name": other.name,
                    "instance_type_name": other.instance_type["name"],
                    "total_gpus": other.total_gpus,
                    "workload_plane_name": "fake-workload-plane",
                    "status_at_submit": status,
                    "status_set_at": iso(other.updated_at(submitted)),
                }
            )
        involved = [job] + [
            self._store.jobs[item["training_job_id"]] for item in active_at_submit + pending_ahead
        ]
        events = []
        for member in involved:
            for moment, status in _transitions(member, window_end):
                if submitted <= moment <= window_end:
                    events.append((moment, member.seq, member, status))
        events.sort(key=lambda event: (event[0], event[1]))
        capacity = self._store.capacity
        return {
            "target_job_id": job.id,
            "target_job_name": job.name,
            "gpu_type": gpu_type,
            "requested_gpus": job.total_gpus,
            "submitted_at": iso(submitted),
            "released_at": iso(released) if released is not None else None,
            "pending_seconds": int(released - submitted) if released is not None else None,
            "org_capacity": {
                "gpu_type": gpu_type,
                "max_gpus": capacity * max(1, job.total_gpus),
                "min_gpus": None,
                "last_modified": iso(self._started_at),
            }
            if capacity is not None
            else None,
            "team_capacity": None,
            "active_at_submit": active_at_submit,
            "pending_ahead_at_submit": pending_ahead,
            "events": [
                {
                    "training_job_id": member.id,
                    "training_job_name": member.name,
                    "status": status,
                    "created": iso(moment),
                    "event_message": None,
                    "exit_code": 1 if status == "TRAINING_JOB_FAILED" else None,
                }
                for moment, _, member, status in events
            ],
            "events_window_end": iso(window_end),
        }

    def _blob_credentials(self, call: _Call) -> dict[str, Any]:
        self._blob_seq += 1
        return {
            "creds": {
                "aws_access_key_id": "FAKEACCESSKEYID",
                "aws_secret_access_key": "fake-secret-access-key",
                "aws_session_token": f"fake-session-token-{self._blob_seq}",
            },
            "s3_key": f"training/uploads/blob-{self._blob_seq:06d}.tgz",
            "s3_bucket": "fake-baseten-training",
        }


def _transitions(job: StoredJob, until: float) -> list[tuple[float, str]]:
    """Status changes of a job up to ``until`` (a diagnostic reconstruction)."""
    moments: list[tuple[float, str]] = []
    seen = None
    probes = [job.created_at]
    if job.released_at is not None:
        t = job.timings
        start = job.released_at
        probes += [start, start + t.created, start + t.created + t.deploying]
        probes.append(start + t.created + t.deploying + t.running)
    for extra in (job.stopped_at, job.forced_at):
        if extra is not None:
            probes.append(extra)
    for moment in sorted(set(probes)):
        if moment > until:
            break
        status = job.status_at(moment)
        if status != seen:
            moments.append((moment, status))
            seen = status
    return moments
