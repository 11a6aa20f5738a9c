"""In-memory state of the fake: teams, projects, jobs and their scheduling on the clock."""

from __future__ import annotations

import dataclasses
import heapq
import random
import string
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from ._models import (
    ACTIVE_STATUSES,
    COMPLETED,
    FAILED,
    LOG_LEVELS,
    PENDING,
    PREEMPTED,
    STOPPED,
    TERMINAL_STATUSES,
    JobTimings,
    StoredJob,
    StoredProject,
    Team,
)
from ._render import auth_code, instance_type_for, iso
from ._rules import ApiError, check_job_spec, session_minutes

__all__ = ["Outcome", "Store", "default_outcome"]

Outcome = Callable[[Mapping[str, Any]], str]
"""Decides a new job's terminal status from its ``training_job`` spec."""

_ID_ALPHABET = string.ascii_lowercase + string.digits
_LOG_TS = attrgetter("timestamp_ns")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
_MAX_GENERATED_STEPS = 100_000


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
        preempt_after: float | None = None,
    ) -> StoredJob:
        """Create (submit) a job.

        Args:
            project: Owning project.
            spec: The ``training_job`` object (defaults filled); stored as is.
            now: Current fake time.
            recreated_from: Source job id for recreations.
            preempt_after: End ``TRAINING_JOB_PREEMPTED`` after this many fake seconds
                of RUNNING (None: the outcome rule decides).

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
        timings = self.timings
        if preempt_after is not None:
            outcome = PREEMPTED
            timings = dataclasses.replace(timings, running=min(timings.running, preempt_after))
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
            timings=timings,
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
                "auth_code": auth_code(job.id, node),
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


def _seq_key(job: StoredJob) -> int:
    return job.seq
