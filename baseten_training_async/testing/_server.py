"""`FakeTrainingAPI`: the facade: lifecycle, public state, faults and seeding helpers.

The request pipeline lives in `_pipeline`, the endpoints in `_handlers`, the state in
`_store`, logs in `_logstore` and wire rendering in `_render`.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from ._clock import FakeClock, LinkedClock
from ._context import ServerState
from ._faults import Fault, FaultKind, FaultSet
from ._handlers import HANDLERS
from ._logstore import add_logs, materialize_logs
from ._models import (
    ACTIVE_STATUSES,
    PREEMPTED,
    FakeStats,
    JobTimings,
    LogLine,
    RequestRecord,
    StoredJob,
    StoredProject,
    Team,
)
from ._pipeline import MAX_BODY, Pipeline
from ._ratelimit import RateLimiter
from ._render import checkpoint_file, checkpoint_record, generated_checkpoint_names
from ._routes import Route
from ._schema import SchemaError
from ._spec import load_spec
from ._store import Outcome, Store, default_outcome

__all__ = ["FakeTrainingAPI", "LogLineLike"]

LogLineLike = (
    LogLine
    | tuple[int, str]
    | tuple[int, str, str | None]
    | tuple[int, str, str | None, str | None]
)
"""A log line, or a ``(timestamp_ns, message[, level[, replica]])`` tuple."""

_DEFAULT_TEAMS = (("team0dflt", "Default Team", True), ("team1rsch", "Research", False))


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
        missing = set(Route.ALL) - set(HANDLERS)
        assert not missing, f"unhandled routes: {missing}"
        self._state = self._new_state()
        self._pipeline = Pipeline(
            api_key=api_key,
            seed=seed,
            clock=self.clock,
            spec=self._spec,
            faults=self._faults,
            limiter=self._limiter,
            validate_responses=validate_responses,
            request_log_limit=request_log_limit,
            state=self._state,
        )

    def _new_state(self) -> ServerState:
        store = Store(
            seed=self._seed,
            capacity=self._capacity,
            timings=self._timings,
            outcome=self._outcome,
            log_every=self._log_every,
        )
        now = self.clock.now()
        for team_id, name, default in _DEFAULT_TEAMS:
            store.add_team(name, now, team_id=team_id, default=default)
        return ServerState(store=store, started_at=now)

    @property
    def _store(self) -> Store:
        return self._state.store

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on ``host:port`` (idempotent).

        Raises:
            OSError: The address cannot be bound.
        """
        if self._runner is not None:
            return
        app = web.Application(client_max_size=MAX_BODY)
        pipeline = self._pipeline
        for route, handler in HANDLERS.items():
            op = self._spec.operations[route]
            app.router.add_route(op.method, op.path, pipeline.endpoint(op, handler))
        app.router.add_route("*", "/{tail:.*}", pipeline.unknown_route)
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
        tasks = self._pipeline.cancel_commits()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()

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
        self._pipeline.cancel_commits()
        self._faults.clear()
        self._faults.reseed(self._seed)
        if self._limiter is not None:
            self._limiter.reset()
        self._state = self._pipeline.state = self._new_state()

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
        return self._state.requests

    @property
    def stats(self) -> FakeStats:
        """Counters (replaced by `reset`)."""
        return self._state.stats

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
        return [record for record in self._state.requests if record.route == route]

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
        - ``"preemption"``: the job the create (or recreate) makes ends
          ``TRAINING_JOB_PREEMPTED`` after ``after`` fake seconds of RUNNING (default
          1), as on spot capacity; the request itself succeeds (route defaults to
          ``CREATE_JOB`` and ``RECREATE_JOB``). `preempt` ends a job that way now.

        Deferred commits, the faults of a real network in front of a real server: the
        request is authenticated, read and validated at once, then the operation runs
        ``delay`` seconds later on the server's own schedule, whether or not the
        client is still connected (a client that timed out at 0.3 s still finds the
        job in a listing once ``delay`` has passed). Each takes ``delay`` and
        ``clock``: ``"real"`` (default) counts ``delay`` in real seconds with
        ``asyncio``; ``"fake"`` counts it on the server's `FakeClock`, so the commit
        happens once a test advances the clock past it; any object with a
        ``monotonic()`` method (such as the SDK's `VirtualClock`, the one
        `fake_time` installs) counts it on that clock, so the commit lands after the
        client's own waits have covered ``delay``. A request received once the time
        has come sees the commit; a fast poll catches clocks that move without
        requests.
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
        self._state.stats.projects_created += int(created)
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
        self._state.stats.jobs_created += 1
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

    def linked_clock(self) -> LinkedClock:
        """A clock for ``AsyncTrainingClient(clock=...)`` that moves this fake's clock.

        Each sleep of the client advances the fake's (manual) clock as much, so
        jobs progress exactly as long as the client waits, and no real time passes.

        Raises:
            RuntimeError: The fake's clock moves on its own (`FakeClock.real`).
        """
        if self.clock.is_real:
            raise RuntimeError("linked_clock() needs a manual FakeClock")
        return LinkedClock(self.clock)

    def force_status(self, job_id: str, status: str) -> None:
        """Pin a job's reported status to any string (unknown values included).

        A status outside the known active set ends the job for capacity purposes.

        Args:
            job_id: Job id.
            status: Status to report from now on.
        """
        self._store.force_status(self._store.any_job(job_id), status, self.clock.now())

    def preempt(self, job_id: str) -> None:
        """End an active job ``TRAINING_JOB_PREEMPTED`` now, as a reclaimed spot node would.

        Args:
            job_id: Job id.

        Raises:
            ValueError: The job has already ended.
        """
        now = self.clock.now()
        self._store.tick(now)
        job = self._store.any_job(job_id)
        status = job.status_at(now)
        if status not in ACTIVE_STATUSES:
            raise ValueError(f"job {job_id} already ended ({status})")
        materialize_logs(job, now)  # what it logged (and saved) until now stays
        self._store.force_status(job, PREEMPTED, now)

    def status_history(self, job_id: str) -> list[tuple[float, str]]:
        """Return every status change of a job on the fake clock so far.

        Args:
            job_id: Job id.

        Returns:
            ``(epoch_seconds, status)`` pairs, oldest first, starting at creation.
        """
        now = self.clock.now()
        self._store.tick(now)
        return self._store.any_job(job_id).transitions(now)

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
        add_logs(job, [_coerce_line(line) for line in lines], replace=False)

    def set_logs(self, job_id: str, lines: Iterable[LogLineLike | Mapping[str, Any]]) -> None:
        """Replace a job's logs with exactly these lines (generation switched off).

        Args:
            job_id: Job id.
            lines: As for `add_logs`.
        """
        job = self._store.any_job(job_id)
        job.log_every = None
        add_logs(job, [_coerce_line(line) for line in lines], replace=True)

    def generate_logs(self, job_id: str, *, every: float | None = 1.0) -> None:
        """Configure generated log lines for a job.

        While RUNNING, the job logs a ``step N`` INFO line (plus a DEBUG line in the
        same millisecond, and every 5th step a ``saved checkpoint-N`` line without
        level) each ``every`` fake seconds, with lines at deploy start, run start and
        the end. Each ``saved checkpoint-N`` line also records that checkpoint (and
        one file per node), served by the checkpoint endpoints, unless a test seeded
        them with `set_checkpoints` or `set_checkpoint_files`.

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
        materialize_logs(job, now)
        return list(job.logs)

    def set_checkpoint_files(
        self, job_id: str, files: int | Sequence[str | Mapping[str, Any]]
    ) -> None:
        """Seed the files served by ``GET .../checkpoint_files`` (replaces saved ones).

        Args:
            job_id: Job id.
            files: A count of generated files, or relative file names, or partial
                ``CheckpointFile`` mappings (missing fields are filled in).
        """
        job = self._store.any_job(job_id)
        seeds = generated_checkpoint_names(files) if isinstance(files, int) else files
        now = self.clock.now()
        job.checkpoint_files = [checkpoint_file(job, i, s, now) for i, s in enumerate(seeds)]
        job.checkpoints_seeded = True

    def set_checkpoints(self, job_id: str, checkpoints: int | Sequence[Mapping[str, Any]]) -> None:
        """Seed the checkpoints served by ``GET .../checkpoints`` (replaces saved ones).

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
        job.checkpoints_seeded = True

    # -- deferred commits ------------------------------------------------------------------

    @property
    def pending_commits(self) -> int:
        """Operations held by deferred-commit faults that have not run yet."""
        return self._pipeline.pending_commits

    async def wait_for_commits(self, timeout: float | None = None) -> None:
        """Wait until every deferred commit (real-time ones; fake-clock ones once due) ran.

        Args:
            timeout: Give up after this many real seconds (None: no limit).

        Raises:
            TimeoutError: Commits are still pending after ``timeout``.
        """
        await self._pipeline.wait_for_commits(timeout)
