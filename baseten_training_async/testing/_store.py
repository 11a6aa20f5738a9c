"""In-memory state of the fake: teams, projects, jobs, scheduling, logs and rendering."""

from __future__ import annotations

import bisect
import copy
import heapq
import math
import random
import re
import string
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from ._models import (
    ACTIVE_STATUSES,
    COMPLETED,
    DEPLOY_FAILED,
    FAILED,
    LOG_LEVELS,
    PENDING,
    STOPPED,
    TERMINAL_STATUSES,
    JobTimings,
    LogLine,
    StoredJob,
    StoredProject,
    Team,
)

__all__ = [
    "ApiError",
    "Outcome",
    "Store",
    "default_outcome",
    "iso",
]

Outcome = Callable[[Mapping[str, Any]], str]
"""Decides a new job's terminal status from its ``training_job`` spec."""

_ID_ALPHABET = string.ascii_lowercase + string.digits
_LOG_TS = attrgetter("timestamp_ns")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
_MAX_GENERATED_STEPS = 100_000
MAX_NODES = 1024
"""Largest ``compute.node_count`` the fake accepts."""
MAX_TIMEOUT_MINUTES = 2**31 - 1
"""Largest session ``timeout_minutes`` (a 32-bit integer column, like the real API's)."""
TEN_YEARS_MINUTES = 10 * 365 * 24 * 60
MAX_EPOCH_MILLIS = 253_402_300_799_999
"""Last millisecond of the year 9999: the largest window bound the API accepts."""
_MAX_CPUS = 100_000
_MAX_GPUS = 1024
_MAX_MEMORY_MIB = float(2**50)
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {
    "": 1 / (1024 * 1024),
    "k": 1000 / (1024 * 1024),
    "ki": 1 / 1024,
    "m": 1_000_000 / (1024 * 1024),
    "mi": 1,
    "g": 1_000_000_000 / (1024 * 1024),
    "gi": 1024,
    "t": 1_000_000_000_000 / (1024 * 1024),
    "ti": 1024 * 1024,
}
_GPU_MEMORY_MIB = {
    "H100": 81_559,
    "H100MIG": 40_960,
    "H200": 143_771,
    "B200": 183_359,
    "A100": 81_920,
    "A100-40GB": 40_960,
    "A10G": 23_028,
    "L4": 23_034,
    "T4": 15_360,
}
_SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
_THIRTY_MINUTES_MS = 30 * 60 * 1000


class ApiError(Exception):
    """An error response the fake sends (``{"message": ...}``).

    Args:
        status: HTTP status code.
        message: Human-readable message.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso(epoch_seconds: float) -> str:
    """Format epoch seconds as an ISO 8601 UTC timestamp.

    Args:
        epoch_seconds: Seconds since the epoch.

    Returns:
        For example ``"2023-11-14T22:13:20.000000Z"``.
    """
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_outcome(spec: Mapping[str, Any]) -> str:
    """The default outcome rule: jobs whose name contains ``fail`` fail.

    Args:
        spec: The ``training_job`` object of the create request.

    Returns:
        ``TRAINING_JOB_FAILED`` when the job name contains ``"fail"``
        (case-insensitive), otherwise ``TRAINING_JOB_COMPLETED``.
    """
    name = spec.get("name")
    if isinstance(name, str) and "fail" in name.lower():
        return FAILED
    return COMPLETED


def _ns(epoch_seconds: float) -> int:
    return round(epoch_seconds * 1e9)


def _memory_mib(memory: object) -> int:
    if isinstance(memory, str):
        match = _MEMORY_RE.match(memory)
        if match:
            factor = _MEMORY_UNITS.get((match.group(2) or "").lower())
            if factor is not None:
                mib = float(match.group(1)) * factor
                if not math.isfinite(mib) or mib > _MAX_MEMORY_MIB:
                    raise ApiError(400, f"training_job.compute.memory: too large ({memory!r})")
                return max(1, int(mib))
    return 2048


def check_job_spec(spec: Mapping[str, Any]) -> None:
    """Refuse job specs the real API refuses beyond the schema (before anything is made).

    Args:
        spec: The validated ``training_job`` object.

    Raises:
        ApiError: 400 naming the field.
    """
    compute = spec.get("compute")
    if isinstance(compute, Mapping):
        nodes = compute.get("node_count", 1)
        if isinstance(nodes, int) and not 1 <= nodes <= MAX_NODES:
            raise ApiError(
                400, f"training_job.compute.node_count: must be 1..{MAX_NODES}, got {nodes}"
            )
        cpus = compute.get("cpu_count", 1)
        if isinstance(cpus, int) and not 0 <= cpus <= _MAX_CPUS:
            raise ApiError(
                400, f"training_job.compute.cpu_count: must be 0..{_MAX_CPUS}, got {cpus}"
            )
        accelerator = compute.get("accelerator")
        if isinstance(accelerator, Mapping):
            count = accelerator.get("count")
            if isinstance(count, int) and not 0 <= count <= _MAX_GPUS:
                raise ApiError(
                    400,
                    f"training_job.compute.accelerator.count: must be 0..{_MAX_GPUS}, got {count}",
                )
        _memory_mib(compute.get("memory"))
    session = spec.get("interactive_session")
    if isinstance(session, Mapping):
        minutes = session.get("timeout_minutes")
        if isinstance(minutes, int) and not -1 <= minutes <= MAX_TIMEOUT_MINUTES:
            raise ApiError(
                400,
                "training_job.interactive_session.timeout_minutes: must be -1 (no timeout) "
                f"or 0..{MAX_TIMEOUT_MINUTES}, got {minutes}",
            )


def check_epoch_millis(params: Mapping[str, Any]) -> None:
    """Refuse window bounds outside the years 1970..9999.

    Args:
        params: Query or body parameters with optional ``start_epoch_millis`` and
            ``end_epoch_millis``.

    Raises:
        ApiError: 400 naming the parameter.
    """
    for name in ("start_epoch_millis", "end_epoch_millis"):
        value = params.get(name)
        if isinstance(value, int) and not 0 <= value <= MAX_EPOCH_MILLIS:
            raise ApiError(400, f"{name}: must be between 0 and {MAX_EPOCH_MILLIS}, got {value}")


def session_minutes(minutes: int) -> int:
    """Minutes a session timeout stands for (``-1``, no timeout, is ten years)."""
    return TEN_YEARS_MINUTES if minutes == -1 else minutes


def instance_type_for(compute: Mapping[str, Any]) -> dict[str, Any]:
    """Derive an ``InstanceTypeV1`` from a job's compute spec.

    Args:
        compute: The ``compute`` object (defaults filled).

    Returns:
        The instance type, named like ``"H100x2"`` (or ``"CPU-4x16Gi"``).
    """
    cpu = compute.get("cpu_count", 1)
    cpu = cpu if isinstance(cpu, int) and cpu > 0 else 1
    memory = compute.get("memory", "2Gi")
    memory_mib = _memory_mib(memory)
    accelerator = compute.get("accelerator")
    if isinstance(accelerator, Mapping):
        gpu = str(accelerator.get("accelerator", "GPU"))
        count = accelerator.get("count", 1)
        count = count if isinstance(count, int) else 1
        name = f"{gpu}x{count}"
        return {
            "id": name,
            "name": f"{name} ({cpu} vCPU, {memory})",
            "memory_limit_mib": memory_mib,
            "millicpu_limit": cpu * 1000,
            "gpu_count": count,
            "gpu_type": gpu,
            "gpu_memory_limit_mib": _GPU_MEMORY_MIB.get(gpu.upper()),
        }
    name = f"CPU-{cpu}x{memory}"
    return {
        "id": name,
        "name": name,
        "memory_limit_mib": memory_mib,
        "millicpu_limit": cpu * 1000,
        "gpu_count": 0,
        "gpu_type": None,
        "gpu_memory_limit_mib": None,
    }


class Store:
    """All mutable state of one fake server.

    Args:
        seed: Seeds the id generator.
        capacity: Maximum concurrently active (released, non-terminal) jobs; None for
            no limit.
        timings: Phase durations for new jobs.
        outcome: Rule choosing each new job's terminal status.
        log_every: Default seconds between generated log lines of running jobs.
    """

    def __init__(
        self,
        *,
        seed: int,
        capacity: int | None,
        timings: JobTimings,
        outcome: Outcome,
        log_every: float | None,
    ) -> None:
        self.seed = seed
        self.timings = timings
        self.outcome = outcome
        self.log_every = log_every
        self._capacity = capacity
        self.teams: dict[str, Team] = {}
        self.team_gpu_limits: dict[tuple[str, str], int] = {}
        """Per-team GPU limits set through ``PATCH /v1/training/capacity``."""
        self.projects: dict[str, StoredProject] = {}
        self.jobs: dict[str, StoredJob] = {}
        self._project_by_name: dict[str, str] = {}
        self._ids = random.Random(f"baseten-fake-ids:{seed}")
        self._seq = 0
        self._active: set[str] = set()
        self._pending: list[StoredJob] = []
        self._ends: list[tuple[float, int, str]] = []

    # -- ids, capacity, scheduling ---------------------------------------------------

    def new_id(self) -> str:
        """Return a fresh 7-character lowercase alphanumeric id (deterministic).

        Returns:
            An id not used by any team, project or job.
        """
        while True:
            candidate = "".join(self._ids.choices(_ID_ALPHABET, k=7))
            if (
                candidate not in self.jobs
                and candidate not in self.projects
                and candidate not in self.teams
            ):
                return candidate

    @property
    def capacity(self) -> int | None:
        """Maximum concurrently active jobs (None: unlimited)."""
        return self._capacity

    def set_capacity(self, capacity: int | None, now: float) -> None:
        """Change the capacity limit, releasing pending jobs that now fit.

        Args:
            capacity: New limit (None: unlimited).
            now: Current fake time.
        """
        if capacity is not None and capacity < 0:
            raise ValueError("capacity must not be negative")
        self.tick(now)
        self._capacity = capacity
        self._release_pending(now)

    def tick(self, now: float) -> None:
        """Apply every job completion up to ``now`` and release queued jobs in order.

        Args:
            now: Current fake time.
        """
        ends = self._ends
        while ends and ends[0][0] <= now:
            end, _, job_id = heapq.heappop(ends)
            if job_id in self._active:
                job = self.jobs.get(job_id)
                if job is not None and job.end_at != end:
                    # Its end moved (e.g. it was stopped): the newer entry wins.
                    continue
                self._active.discard(job_id)
                self._release_pending(end)
        self._release_pending(now)

    def _has_room(self) -> bool:
        return self._capacity is None or len(self._active) < self._capacity

    def _release_pending(self, at: float) -> None:
        while self._pending and self._has_room():
            best = max(self._pending, key=lambda job: (job.priority, -job.seq))
            self._pending.remove(best)
            self._release(best, at)

    def _release(self, job: StoredJob, at: float) -> None:
        job.released_at = at
        self._active.add(job.id)
        end = job.end_at
        if end is not None:
            heapq.heappush(self._ends, (end, job.seq, job.id))

    def _deactivate(self, job: StoredJob, now: float) -> None:
        if job in self._pending:
            self._pending.remove(job)
        self._active.discard(job.id)
        self._release_pending(now)

    def active_jobs(self) -> list[StoredJob]:
        """Return released, non-terminal jobs (as of the last `tick`).

        Returns:
            Active jobs, oldest first.
        """
        return sorted((self.jobs[i] for i in self._active if i in self.jobs), key=_seq_key)

    def pending_jobs(self) -> list[StoredJob]:
        """Return jobs waiting for capacity, in dequeue order.

        Returns:
            Pending jobs, highest priority first then oldest first.
        """
        return sorted(self._pending, key=lambda job: (-job.priority, job.seq))

    # -- teams and projects ----------------------------------------------------------

    def add_team(self, name: str, now: float, *, team_id: str | None, default: bool) -> Team:
        """Create a team.

        Args:
            name: Team name.
            now: Current fake time.
            team_id: Explicit id, or None to generate one.
            default: Whether it is the default team.

        Returns:
            The new team.
        """
        team = Team(id=team_id or self.new_id(), name=name, default=default, created_at=now)
        self.teams[team.id] = team
        return team

    def upsert_project(
        self, name: str, now: float, team: Team | None
    ) -> tuple[StoredProject, bool]:
        """Create a project or touch the existing one with that name.

        Args:
            name: Project name.
            now: Current fake time.
            team: Team of the team endpoint, if used (sets ``team_name``).

        Returns:
            The project and whether it was created.
        """
        existing = self._project_by_name.get(name)
        if existing is not None:
            project = self.projects[existing]
            project.updated_at = now
            if team is not None:
                project.team_name = team.name
            return project, False
        project = StoredProject(
            id=self.new_id(),
            name=name,
            created_at=now,
            updated_at=now,
            team_name=team.name if team is not None else None,
        )
        self.projects[project.id] = project
        self._project_by_name[name] = project.id
        return project, True

    def project(self, project_id: str) -> StoredProject:
        """Look a project up.

        Args:
            project_id: Project id.

        Returns:
            The project.

        Raises:
            ApiError: 404 when unknown.
        """
        project = self.projects.get(project_id)
        if project is None:
            raise ApiError(404, f"Training project {project_id!r} not found")
        return project

    def delete_project(self, project: StoredProject, now: float) -> None:
        """Delete a project and all its jobs.

        Args:
            project: The project.
            now: Current fake time.
        """
        for job_id in list(project.job_ids):
            job = self.jobs.get(job_id)
            if job is not None:
                self.delete_job(job, now)
        self.projects.pop(project.id, None)
        if self._project_by_name.get(project.name) == project.id:
            del self._project_by_name[project.name]

    # -- jobs ------------------------------------------------------------------------

    def job(self, project_id: str, job_id: str) -> StoredJob:
        """Look a job up within a project.

        Args:
            project_id: Project id.
            job_id: Job id.

        Returns:
            The job.

        Raises:
            ApiError: 404 when the project or job is unknown, or the job belongs to
                another project.
        """
        self.project(project_id)
        job = self.jobs.get(job_id)
        if job is None or job.project_id != project_id:
            raise ApiError(404, f"Training job {job_id!r} not found in project {project_id!r}")
        return job

    def any_job(self, job_id: str) -> StoredJob:
        """Look a job up by id alone.

        Args:
            job_id: Job id.

        Returns:
            The job.

        Raises:
            ApiError: 404 when unknown.
        """
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Training job {job_id!r} not found")
        return job

    def create_job(
        self,
        project: StoredProject,
        spec: dict[str, Any],
        now: float,
        *,
        recreated_from: str | None = None,
    ) -> StoredJob:
        """Create (submit) a job.

        Args:
            project: Owning project.
            spec: The ``training_job`` object (defaults filled); stored as is.
            now: Current fake time.
            recreated_from: Source job id for recreations.

        Returns:
            The new job (PENDING when over capacity, CREATED otherwise).

        Raises:
            ApiError: 500 when the outcome rule returns a non-terminal status.
        """
        check_job_spec(spec)
        self.tick(now)
        outcome = self.outcome(spec)
        if outcome not in TERMINAL_STATUSES and not outcome.startswith("TRAINING_JOB_"):
            raise ApiError(500, f"outcome rule returned an invalid status {outcome!r}")
        self._seq += 1
        name = spec.get("name")
        priority = spec.get("priority")
        compute = spec.get("compute")
        job = StoredJob(
            id=self.new_id(),
            project_id=project.id,
            spec=spec,
            name=name if isinstance(name, str) else None,
            seq=self._seq,
            created_at=now,
            timings=self.timings,
            outcome=outcome,
            priority=priority if isinstance(priority, int) else 0,
            availability_model=str(
                (compute if isinstance(compute, Mapping) else {}).get(
                    "availability_model", "dedicated"
                )
            ),
            recreated_from=recreated_from,
            instance_type=instance_type_for(compute if isinstance(compute, Mapping) else {}),
            log_every=self.log_every,
        )
        job.sessions = self._sessions_for(job, now)
        self.jobs[job.id] = job
        project.job_ids.append(job.id)
        if self._has_room() and not self._pending:
            self._release(job, now)
        else:
            self._pending.append(job)
        return job

    def _sessions_for(self, job: StoredJob, now: float) -> dict[str, dict[str, Any]]:
        config = job.spec.get("interactive_session")
        if not isinstance(config, Mapping):
            return {}
        sessions: dict[str, dict[str, Any]] = {}
        timeout = config.get("timeout_minutes", 480)
        timeout = timeout if isinstance(timeout, int) else 480
        for node in range(job.node_count):
            session_id = f"{job.id}-s{node}"
            sessions[session_id] = {
                "id": session_id,
                "trigger": config.get("trigger", "on_demand"),
                "timeout_minutes": timeout,
                "session_provider": config.get("session_provider", "vs_code"),
                "auth_provider": config.get("auth_provider", "github"),
                "pod_name": f"{job.id}-node-{node}",
                "expires_at": iso(now + 60 * session_minutes(timeout)),
                "tunnel_name": f"fake-tunnel-{job.id}-{node}",
                "auth_code": _auth_code(job.id, node),
                "auth_url": "https://github.com/login/device",
                "auth_code_generated_at": iso(now),
                "authenticated_at": None,
                "working_directory": "/b10/workspace"
                if job.spec.get("enable_baseten_workdir")
                else "/",
            }
        return sessions

    def stop_job(self, job: StoredJob, now: float) -> bool:
        """Stop a job that is not terminal yet.

        Args:
            job: The job.
            now: Current fake time.

        Returns:
            Whether the job was stopped (False if it had already finished).
        """
        self.tick(now)
        if job.status_at(now) not in ACTIVE_STATUSES:
            return False
        job.stopped_at = now
        if job.forced_status is not None:
            job.forced_status = STOPPED
            job.forced_at = now
        self._deactivate(job, now)
        return True

    def delete_job(self, job: StoredJob, now: float) -> bool:
        """Delete a job, stopping it first if it is still active.

        Args:
            job: The job.
            now: Current fake time.

        Returns:
            Whether the job had to be stopped.
        """
        stopped = self.stop_job(job, now)
        self._deactivate(job, now)
        self.jobs.pop(job.id, None)
        project = self.projects.get(job.project_id)
        if project is not None and job.id in project.job_ids:
            project.job_ids.remove(job.id)
        return stopped

    def force_status(self, job: StoredJob, status: str, now: float) -> None:
        """Pin a job's status (any string, including unknown ones).

        Args:
            job: The job.
            status: The status to report from now on.
            now: Current fake time.
        """
        self.tick(now)
        job.forced_status = status
        job.forced_at = now
        if status not in ACTIVE_STATUSES:
            self._deactivate(job, now)

    def update_job(
        self,
        job: StoredJob,
        now: float,
        *,
        priority: int | None = None,
        availability_model: str | None = None,
    ) -> None:
        """Change the priority and/or availability model of a PENDING job.

        Args:
            job: The job.
            now: Current fake time.
            priority: New priority (None: unchanged).
            availability_model: New availability model (None: unchanged).

        Raises:
            ApiError: 400 when nothing is asked, or a change is asked of a job that is
                not PENDING.
        """
        if priority is None and availability_model is None:
            raise ApiError(400, "Send at least one of priority, availability_model")
        status = job.status_at(now)
        if status != PENDING:
            what = "priority" if availability_model is None else "availability model"
            raise ApiError(
                400, f"Only PENDING jobs can have their {what} changed (job is {status})"
            )
        if priority is not None:
            job.priority = priority
        if availability_model is not None:
            job.availability_model = availability_model

    def latest_job(self, project: StoredProject) -> StoredJob | None:
        """Return the project's most recently created job.

        Args:
            project: The project.

        Returns:
            The job, or None for a project without jobs.
        """
        for job_id in reversed(project.job_ids):
            job = self.jobs.get(job_id)
            if job is not None:
                return job
        return None

    # -- logs ------------------------------------------------------------------------

    def add_logs(self, job: StoredJob, lines: Iterable[LogLine], *, replace: bool) -> None:
        """Add explicit log lines to a job (keeps the list sorted, stable).

        Args:
            job: The job.
            lines: Lines to add.
            replace: Drop the existing lines first.
        """
        if replace:
            job.logs.clear()
        job.logs.extend(lines)
        job.logs.sort(key=_LOG_TS)

    def materialize_logs(self, job: StoredJob, now: float) -> None:
        """Generate the job's automatic log lines up to ``now``.

        Generated lines: an image-pull line when DEPLOYING starts, a start line when
        RUNNING starts, per ``log_every`` seconds of RUNNING a ``step N`` INFO line
        plus a DEBUG line in the same millisecond (and, every 5th step, a line without
        a level), and a final line when the job ends (ERROR for failures).

        Args:
            job: The job.
            now: Current fake time.
        """
        every = job.log_every
        if every is None or every <= 0 or job.released_at is None:
            return
        end = job.end_at
        if end is None:
            return
        timings = job.timings
        horizon = min(now, end)
        new: list[LogLine] = []
        deploy_at = job.released_at + timings.created
        if not job._log_deploy_done and deploy_at <= horizon and deploy_at < end:
            image = job.spec.get("image")
            base = image.get("base_image") if isinstance(image, Mapping) else None
            new.append(LogLine(_ns(deploy_at), f"Pulling image {base}", "INFO", None))
            job._log_deploy_done = True
        run_at = deploy_at + timings.deploying
        if job.outcome != DEPLOY_FAILED and run_at < end:
            base_ns = _ns(run_at)
            if not job._log_start_done and run_at <= horizon:
                runtime = job.spec.get("runtime")
                commands = runtime.get("start_commands", []) if isinstance(runtime, Mapping) else []
                text = " && ".join(str(c) for c in commands) or "<image entrypoint>"
                new.append(LogLine(base_ns, f"Starting training: {text}", "INFO", "0"))
                job._log_start_done = True
            every_ns = max(1, round(every * 1e9))
            step = job._log_next_step
            while step <= _MAX_GENERATED_STEPS:
                at = run_at + step * every
                if at > horizon or at >= end:
                    break
                ts = base_ns + step * every_ns
                loss = 2.5 * math.exp(-0.05 * step) + 0.1
                new.append(LogLine(ts, f"step {step}: loss={loss:.4f}", "INFO", "0"))
                new.append(
                    LogLine(ts + 1500, f"step {step}: grad_norm={loss / 3:.4f}", "DEBUG", "0")
                )
                if step % 5 == 0:
                    new.append(LogLine(ts + 250_000, f"saved checkpoint-{step}", None, "0"))
                step += 1
            job._log_next_step = step
        if not job._log_final_done and end <= now:
            status = job.status_at(now)
            new.append(_final_line(status, _ns(end)))
            job._log_final_done = True
        if new:
            job.logs.extend(new)
            job.logs.sort(key=_LOG_TS)

    def query_logs(
        self,
        job: StoredJob,
        now: float,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int | None,
        direction: str | None,
        min_level: str | None,
    ) -> list[LogLine]:
        """Select a page of logs with the real API's rules.

        A line is in the window when ``start_ms <= timestamp_ns // 1_000_000 <=
        end_ms`` (both ends inclusive). ``end_ms`` defaults to now, ``start_ms`` to 30
        minutes before the end; windows over 7 days are refused; ``limit`` defaults to
        500 and must be within 1..1000; ``direction`` defaults to ``asc``;
        ``min_level`` drops lower levels and lines without a level. The first
        ``limit`` lines in ``direction`` order are returned.

        Args:
            job: The job.
            now: Current fake time.
            start_ms: Window start (epoch milliseconds).
            end_ms: Window end (epoch milliseconds).
            limit: Maximum lines.
            direction: ``asc`` or ``desc``.
            min_level: Minimum level.

        Returns:
            The selected lines in order.

        Raises:
            ApiError: 400 for an invalid window or limit.
        """
        if end_ms is None:
            end_ms = int(now * 1000)
        if start_ms is None:
            start_ms = end_ms - _THIRTY_MINUTES_MS
        if start_ms > end_ms:
            raise ApiError(400, "start_epoch_millis must not be after end_epoch_millis")
        if end_ms - start_ms > _SEVEN_DAYS_MS:
            raise ApiError(
                400, "The window from start_epoch_millis to end_epoch_millis exceeds 7 days"
            )
        if limit is None:
            limit = 500
        if not 1 <= limit <= 1000:
            raise ApiError(400, f"limit: must be between 1 and 1000, got {limit}")
        self.materialize_logs(job, now)
        logs = job.logs
        lo = bisect.bisect_left(logs, start_ms * 1_000_000, key=_LOG_TS)
        hi = bisect.bisect_left(logs, (end_ms + 1) * 1_000_000, key=_LOG_TS)
        descending = direction == "desc"
        if min_level is None:
            if descending:
                return logs[max(lo, hi - limit) : hi][::-1]
            return logs[lo : min(hi, lo + limit)]
        threshold = _LEVEL_RANK[min_level]
        indices: Iterable[int] = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        selected: list[LogLine] = []
        for index in indices:
            line = logs[index]
            if line.level is not None and _LEVEL_RANK[line.level] >= threshold:
                selected.append(line)
                if len(selected) >= limit:
                    break
        return selected

    # -- rendering -------------------------------------------------------------------

    def render_job(self, job: StoredJob, now: float) -> dict[str, Any]:
        """Render a ``TrainingJobV1``.

        Args:
            job: The job.
            now: Current fake time.

        Returns:
            The wire object.
        """
        status = job.status_at(now)
        project = self.projects.get(job.project_id)
        failed = status in (FAILED, DEPLOY_FAILED)
        return {
            "id": job.id,
            "created_at": iso(job.created_at),
            "current_status": status,
            "error_message": f"Fake failure ({status})" if failed else None,
            "instance_type": job.instance_type,
            "updated_at": iso(job.updated_at(now)),
            "training_project_id": job.project_id,
            "training_project": {
                "id": job.project_id,
                "name": project.name if project is not None else "",
            },
            "name": job.name,
            "checkpoint_sync_status": ("COMPLETED" if status in TERMINAL_STATUSES else "SYNCING")
            if job.checkpoints
            else None,
            "priority": job.priority,
            "availability_model": job.availability_model,
            "node_count": job.node_count,
            "user": {"email": "fake-user@example.com"},
        }

    def render_project(self, project: StoredProject, now: float) -> dict[str, Any]:
        """Render a ``TrainingProjectV1`` (with ``latest_job``).

        Args:
            project: The project.
            now: Current fake time.

        Returns:
            The wire object.
        """
        latest = self.latest_job(project)
        return {
            "id": project.id,
            "name": project.name,
            "created_at": iso(project.created_at),
            "updated_at": iso(project.updated_at),
            "team_name": project.team_name,
            "latest_job": self.render_job(latest, now) if latest is not None else None,
        }


def _auth_code(job_id: str, node: int) -> str:
    digest = f"{zlib.crc32(f'{job_id}:{node}'.encode()):08X}"
    return f"{digest[:4]}-{digest[4:]}"


def _seq_key(job: StoredJob) -> int:
    return job.seq


def _final_line(status: str, ts: int) -> LogLine:
    if status == COMPLETED:
        return LogLine(ts, "Training completed successfully", "INFO", "0")
    if status == FAILED:
        return LogLine(ts, "RuntimeError: fake training failure (exit code 1)", "ERROR", "0")
    if status == DEPLOY_FAILED:
        return LogLine(ts, "Failed to deploy: fake image pull error", "ERROR", None)
    if status == STOPPED:
        return LogLine(ts, "Received stop request; shutting down", "WARNING", "0")
    return LogLine(ts, f"Job reached {status}", "INFO", None)


def checkpoint_file(
    job: StoredJob, index: int, seed: str | Mapping[str, Any], now: float
) -> dict[str, Any]:
    """Build a ``CheckpointFile`` object from a seed.

    Args:
        job: Owning job.
        index: Position in the job's file list.
        seed: A relative file name or a partial ``CheckpointFile`` mapping.
        now: Current fake time.

    Returns:
        A complete ``CheckpointFile``.
    """
    fields: dict[str, Any] = {"relative_file_name": seed} if isinstance(seed, str) else dict(seed)
    name = str(fields.get("relative_file_name", f"checkpoint/file-{index:05d}.bin"))
    return {
        "url": fields.get(
            "url",
            f"https://fake-s3.baseten.invalid/checkpoints/{job.id}/{name}?X-Amz-Signature=fake",
        ),
        "relative_file_name": name,
        "node_rank": fields.get("node_rank", 0),
        "size_bytes": fields.get("size_bytes", 1024 * (index + 1)),
        "last_modified": fields.get("last_modified", iso(now)),
    }


def generated_checkpoint_names(count: int) -> Sequence[str]:
    """Return ``count`` plausible checkpoint file names.

    Args:
        count: How many names.

    Returns:
        Names like ``checkpoint-3/model-00012.safetensors``.
    """
    return [f"checkpoint-{i // 10}/model-{i:05d}.safetensors" for i in range(count)]


def checkpoint_record(
    job: StoredJob, index: int, seed: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """Build a ``TrainingJobCheckpointV1`` object from a partial mapping.

    Args:
        job: Owning job.
        index: Position in the job's checkpoint list.
        seed: Fields to override.
        now: Current fake time.

    Returns:
        A complete checkpoint object.
    """
    record: dict[str, Any] = {
        "checkpoint_id": f"checkpoint-{index + 1}",
        "created_at": iso(now),
        "checkpoint_type": "full",
        "base_model": None,
        "lora_adapter_config": None,
        "size_bytes": 1_000_000 * (index + 1),
        "sync_status": "COMPLETED",
        "training_job_id": job.id,
    }
    record.update(copy.deepcopy(dict(seed)))
    return record
