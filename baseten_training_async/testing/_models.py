"""State records of the fake server: teams, projects, jobs, log lines, requests, stats."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..models import JobStatus

__all__ = [
    "ACTIVE_STATUSES",
    "COMPLETED",
    "CREATED",
    "DEPLOYING",
    "DEPLOY_FAILED",
    "FAILED",
    "LOG_LEVELS",
    "PENDING",
    "PREEMPTED",
    "RUNNING",
    "STOPPED",
    "TERMINAL_STATUSES",
    "FakeStats",
    "JobTimings",
    "LogLine",
    "RequestRecord",
    "StoredJob",
    "StoredProject",
    "Team",
]

# The fake speaks the same statuses as the SDK's models: one source of truth.
PENDING: Final = JobStatus.PENDING
CREATED: Final = JobStatus.CREATED
DEPLOYING: Final = JobStatus.DEPLOYING
RUNNING: Final = JobStatus.RUNNING
COMPLETED: Final = JobStatus.COMPLETED
FAILED: Final = JobStatus.FAILED
DEPLOY_FAILED: Final = JobStatus.DEPLOY_FAILED
STOPPED: Final = JobStatus.STOPPED
PREEMPTED: Final = JobStatus.PREEMPTED

ACTIVE_STATUSES: Final = JobStatus.ACTIVE
TERMINAL_STATUSES: Final = JobStatus.TERMINAL
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class JobTimings:
    """How long a released job spends in each phase, in fake-clock seconds.

    A job leaves PENDING when capacity allows (immediately without a capacity limit),
    is CREATED for ``created`` seconds, DEPLOYING for ``deploying`` seconds, RUNNING
    for ``running`` seconds, then takes its outcome (COMPLETED by default).

    Attributes:
        created: Seconds in TRAINING_JOB_CREATED.
        deploying: Seconds in TRAINING_JOB_DEPLOYING.
        running: Seconds in TRAINING_JOB_RUNNING.
    """

    created: float = 1.0
    deploying: float = 2.0
    running: float = 10.0

    def __post_init__(self) -> None:
        if min(self.created, self.deploying, self.running) < 0:
            raise ValueError("job phase durations must not be negative")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line of a job.

    Attributes:
        timestamp_ns: Epoch nanoseconds (served as a decimal string).
        message: The line's text.
        level: ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or None (no detected level).
        replica: Replica the line came from, or None.
    """

    timestamp_ns: int
    message: str
    level: str | None = None
    replica: str | None = None

    def __post_init__(self) -> None:
        if self.level is not None and self.level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {LOG_LEVELS} or None, got {self.level!r}")

    def to_json(self) -> dict[str, Any]:
        """Render as a ``LogV1`` object.

        Returns:
            The wire representation.
        """
        return {
            "timestamp": str(self.timestamp_ns),
            "message": self.message,
            "replica": self.replica,
            "request_id": None,
            "level": self.level,
        }


@dataclass(slots=True)
class Team:
    """A team (``TeamV1``).

    Attributes:
        id: Team id.
        name: Team name.
        default: Whether this is the organisation's default team.
        created_at: Epoch seconds.
    """

    id: str
    name: str
    default: bool
    created_at: float


@dataclass(slots=True, eq=False)
class StoredProject:
    """A training project held by the fake.

    Attributes:
        id: Project id.
        name: Project name (unique: upserts by name return the same project).
        created_at: Epoch seconds.
        updated_at: Epoch seconds of the last upsert.
        team_name: Team name when upserted through the team endpoint, else None.
        job_ids: Ids of the project's jobs, oldest first.
    """

    id: str
    name: str
    created_at: float
    updated_at: float
    team_name: str | None = None
    job_ids: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class StoredJob:
    """A training job held by the fake.

    Status is not stored: it is computed from the clock with `status_at`.

    Attributes:
        id: Job id.
        project_id: Owning project id.
        spec: The ``training_job`` object as received, with spec defaults filled in.
        name: Job name (duplicates allowed).
        seq: Creation sequence number (total order of creation).
        created_at: Epoch seconds of creation (submission).
        timings: Phase durations.
        outcome: Terminal status the job reaches when it finishes.
        priority: Queue priority.
        availability_model: ``dedicated`` or ``spot`` (or any string a client sent).
        released_at: When it left PENDING (None while pending).
        stopped_at: When it was stopped, if it was.
        forced_status: Status forced by `FakeTrainingAPI.force_status`, if any.
        forced_at: When the status was forced.
        recreated_from: Id of the job this one was recreated from.
        instance_type: Rendered ``InstanceTypeV1``.
        logs: Log lines, sorted by timestamp (stable).
        log_every: Seconds between generated log lines while RUNNING (None: no
            generated lines).
        checkpoint_files: ``CheckpointFile`` objects, saved or seeded like
            ``checkpoints`` (one file per node and checkpoint).
        checkpoints: ``TrainingJobCheckpointV1`` objects: the ones a running job saved
            (one per ``saved checkpoint-N`` log line), or the ones a test seeded.
        checkpoints_seeded: A test set the checkpoints or their files; the job no
            longer adds the ones it saves.
        sessions: Interactive sessions by id (``InteractiveSessionV1`` objects).
    """

    id: str
    project_id: str
    spec: dict[str, Any]
    name: str | None
    seq: int
    created_at: float
    timings: JobTimings
    outcome: str
    priority: int = 0
    availability_model: str = "dedicated"
    released_at: float | None = None
    stopped_at: float | None = None
    forced_status: str | None = None
    forced_at: float | None = None
    recreated_from: str | None = None
    instance_type: dict[str, Any] = field(default_factory=dict)
    logs: list[LogLine] = field(default_factory=list)
    log_every: float | None = None
    checkpoint_files: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    checkpoints_seeded: bool = False
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Log generation progress (private bookkeeping).
    _log_deploy_done: bool = False
    _log_start_done: bool = False
    _log_final_done: bool = False
    _log_next_step: int = 1

    @property
    def natural_end(self) -> float | None:
        """When the job finishes on its own (None while pending)."""
        if self.released_at is None:
            return None
        t = self.timings
        end = self.released_at + t.created + t.deploying
        if self.outcome != DEPLOY_FAILED:
            end += t.running
        return end

    @property
    def end_at(self) -> float | None:
        """When the job reached (or will reach) a terminal status, if known."""
        if self.forced_status is not None and self.forced_status not in ACTIVE_STATUSES:
            return self.forced_at
        natural = self.natural_end
        if self.stopped_at is not None:
            return self.stopped_at if natural is None else min(natural, self.stopped_at)
        return natural

    def status_at(self, now: float) -> str:
        """Return the job's status at a given time.

        Args:
            now: Epoch seconds (normally the fake clock's current time).

        Returns:
            A ``TRAINING_JOB_*`` status.
        """
        if self.forced_status is not None and (self.forced_at is None or now >= self.forced_at):
            return self.forced_status
        natural = self.natural_end
        stopped = self.stopped_at
        if stopped is not None and now >= stopped and (natural is None or stopped < natural):
            return STOPPED
        if self.released_at is None or now < self.released_at:
            return PENDING
        elapsed = now - self.released_at
        t = self.timings
        if elapsed < t.created:
            return CREATED
        if elapsed < t.created + t.deploying:
            return DEPLOYING
        if self.outcome == DEPLOY_FAILED:
            return DEPLOY_FAILED
        if elapsed < t.created + t.deploying + t.running:
            return RUNNING
        return self.outcome

    def updated_at(self, now: float) -> float:
        """Return when the job's status last changed, as of ``now``.

        Args:
            now: Epoch seconds.

        Returns:
            Epoch seconds.
        """
        end = self.end_at
        horizon = now if end is None else min(now, end)
        moments = [self.created_at]
        if self.released_at is not None:
            t = self.timings
            start = self.released_at
            moments += [start, start + t.created, start + t.created + t.deploying]
        if end is not None:
            moments.append(end)
        if self.forced_at is not None:
            moments.append(self.forced_at)
            horizon = max(horizon, min(now, self.forced_at))
        return max(m for m in moments if m <= horizon or m == self.created_at)

    def transitions(self, until: float) -> list[tuple[float, str]]:
        """Return the job's status changes up to ``until``, oldest first.

        Args:
            until: Epoch seconds (normally the fake clock's current time).

        Returns:
            ``(epoch_seconds, status)`` pairs, starting with the status at creation.
        """
        probes = [self.created_at]
        if self.released_at is not None:
            t = self.timings
            start = self.released_at
            probes += [start, start + t.created, start + t.created + t.deploying]
            probes.append(start + t.created + t.deploying + t.running)
        for extra in (self.stopped_at, self.forced_at):
            if extra is not None:
                probes.append(extra)
        moments: list[tuple[float, str]] = []
        seen = None
        for moment in sorted(set(probes)):
            if moment > until:
                break
            status = self.status_at(moment)
            if status != seen:
                moments.append((moment, status))
                seen = status
        return moments

    @property
    def gpu_type(self) -> str | None:
        """GPU type requested by the spec, if any."""
        gpu = self.instance_type.get("gpu_type")
        return gpu if isinstance(gpu, str) else None

    @property
    def total_gpus(self) -> int:
        """GPUs per node times node count."""
        count = self.instance_type.get("gpu_count", 0)
        nodes = self.node_count
        return int(count) * nodes if isinstance(count, int) else 0

    @property
    def node_count(self) -> int:
        """Node count requested by the spec (at least 1)."""
        compute = self.spec.get("compute")
        nodes = compute.get("node_count", 1) if isinstance(compute, Mapping) else 1
        return nodes if isinstance(nodes, int) and nodes > 0 else 1


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One request as seen by the fake (the API key is never stored).

    Attributes:
        request_id: The ``x-request-id`` sent back (also for dropped requests).
        method: HTTP method.
        path: Request path.
        query: Query parameters.
        headers: Request headers; ``Authorization`` is redacted to its scheme.
        route: Matched operation (a `Route` constant), None for unknown paths.
        time: Fake-clock time when the request arrived.
        body: Decoded JSON body (None when absent or not JSON).
        status: Status code sent, None when no response was sent.
        outcome: ``served``, ``rate_limited``, ``injected_<status>``,
            ``dropped_before``, ``dropped_after_commit``, ``malformed_json``,
            ``truncated_body``, ``committed_then_dropped``, ``committed_then_stalled``
            or ``committed_then_garbled``.
        fault: Kind of the injected fault drawn for this request, if any.
        committed_at: Fake-clock time the operation ran (None: it did not run, or
            not yet, under a deferred-commit fault).
    """

    request_id: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    route: str | None
    time: float
    body: Any = None
    status: int | None = None
    outcome: str = "pending"
    fault: str | None = None
    committed_at: float | None = None


@dataclass(slots=True, eq=False)
class FakeStats:
    """Counters kept by the fake.

    Attributes:
        requests: Requests received.
        served: Requests answered by the normal handler path (any status code).
        unauthorized: 401 responses.
        rate_limited: 429 responses from the token bucket (not injected ones).
        injected: Injected faults drawn, by kind.
        statuses: Responses sent, by status code.
        routes: Requests received, by route.
        projects_created: Projects created (upserts of an existing name excluded).
        jobs_created: Jobs created, including recreations.
        jobs_recreated: Jobs created by the recreate endpoint.
        jobs_stopped: Jobs stopped (explicitly or by deletion).
    """

    requests: int = 0
    served: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    routes: collections.Counter[str] = field(default_factory=collections.Counter)
    projects_created: int = 0
    jobs_created: int = 0
    jobs_recreated: int = 0
    jobs_stopped: int = 0
