"""All wire knowledge in one place: routes, envelopes and query parameters.

Each API operation is one `Route`: its method, path template, response type
and retry class (idempotent or not). Resources, pagination, fan-out and
reconciliation name a route; none of them formats a path or wraps a body.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote

import msgspec

from ._codec import has_control_characters
from ._errors import InvalidInputError
from .models import (
    AuthCode,
    BlobCredentials,
    CacheSummary,
    Checkpoint,
    CheckpointFile,
    InteractiveSessionUpdate,
    JobMetrics,
    JobTombstone,
    LogLine,
    ProjectTombstone,
    QueueContext,
    SSHCertificate,
    Team,
    TeamGpuCapacity,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
    TrainingProject,
)

T = TypeVar("T")


def segment(field: str, value: object) -> str:
    """Check an id and escape it as one URL path segment.

    An id can never reach another path: ``/``, ``?``, ``#`` and ``%`` are
    percent-encoded, and ``.``/``..`` are refused.

    Raises:
        InvalidInputError: The id is not a non-empty string, or is unsafe.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if value in (".", "..") or has_control_characters(value):
        raise InvalidInputError(field, f"is not a valid id: {value!r}")
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    """One API operation.

    Attributes:
        method: The HTTP method.
        template: The path, with ``{name}`` for each id.
        response: The type the response body decodes into.
        idempotent: Whether a lost response may be retried by resending.
    """

    method: str
    template: str
    response: type[T]
    idempotent: bool
    ids: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(n for _, n, _, _ in string.Formatter().parse(self.template) if n)
        object.__setattr__(self, "ids", names)

    def path(self, *ids: str) -> str:
        """The escaped path for these ids, in template order.

        Raises:
            InvalidInputError: An id is missing, empty or unsafe.
        """
        if len(ids) != len(self.ids):
            raise TypeError(f"{self.template} takes {len(self.ids)} ids, got {len(ids)}")
        for name, value in zip(self.ids, ids, strict=True):
            if not isinstance(value, str):
                segment(name, value)  # raises, naming the id
        return _format(self.template, self.ids, ids)


@functools.lru_cache(maxsize=4096)  # a batch formats the same path thousands of times
def _format(template: str, names: tuple[str, ...], ids: tuple[str, ...]) -> str:
    return template.format(
        **{name: segment(name, value) for name, value in zip(names, ids, strict=True)}
    )


# Envelopes: the API wraps most payloads in one key.


class _Envelope(msgspec.Struct, kw_only=True, gc=False):
    pass


class ProjectEnvelope(_Envelope):
    training_project: TrainingProject


class ProjectsEnvelope(_Envelope):
    training_projects: list[TrainingProject]


class JobEnvelope(_Envelope):
    training_job: TrainingJob


class JobsEnvelope(_Envelope):
    training_jobs: list[TrainingJob]


class CheckpointsEnvelope(_Envelope):
    training_job: TrainingJob
    checkpoints: list[Checkpoint]


class CheckpointFilesPage(_Envelope):
    presigned_urls: list[CheckpointFile]
    total_count: int
    next_page_token: int | None = None


class LogsEnvelope(_Envelope):
    logs: list[LogLine]


class DownloadEnvelope(_Envelope):
    artifact_presigned_urls: list[str]


class TeamsEnvelope(_Envelope):
    teams: list[Team]


class AuthCodesEnvelope(_Envelope):
    auth_codes: list[AuthCode]


class TeamCapacityEnvelope(_Envelope):
    """baseten 0.13.1: PatchTeamTrainingGpuCapacityResponse (not in the published spec)."""

    team_gpu_capacity: TeamGpuCapacity


# Request bodies.


class ProjectName(msgspec.Struct):
    name: str


class UpsertProjectRequest(msgspec.Struct):
    training_project: ProjectName


class CreateJobRequest(msgspec.Struct):
    training_job: TrainingJobSpec


class EmptyRequest(msgspec.Struct):
    """``{}``: the body of stop and recreate."""


class OrderBy(msgspec.Struct):
    field: str
    order: str


class SearchRequest(msgspec.Struct, omit_defaults=True):
    project_id: str | None = None
    job_id: str | None = None
    statuses: list[str] | None = None
    order_by: list[OrderBy] = msgspec.field(default_factory=list)


# In the bodies below, a field left at None is not sent.


class UpdateJobRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    priority: int | None = None  # optional since baseten 0.13.1: UpdateTrainingJobRequest
    availability_model: str | None = None  # baseten 0.13.1: UpdateTrainingJobRequest


class PatchSessionRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    timeout_minutes: int | None = None
    trigger: str | None = None


class SignSSHRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    public_key: str
    replica_id: str | None = None


class PatchCapacityRequest(msgspec.Struct, kw_only=True):
    """baseten 0.13.1: PatchTeamTrainingGpuCapacityRequest (not in the published spec)."""

    team_id: str
    gpu_type: str
    max_gpus: int


EMPTY = EmptyRequest()

# Routes.

_P = "/v1/training_projects/{project_id}"
_J = _P + "/jobs/{job_id}"

LIST_PROJECTS = Route("GET", "/v1/training_projects", ProjectsEnvelope, idempotent=True)
UPSERT_PROJECT = Route("POST", "/v1/training_projects", ProjectEnvelope, idempotent=True)
UPSERT_TEAM_PROJECT = Route(
    "POST", "/v1/teams/{team_id}/training_projects", ProjectEnvelope, idempotent=True
)
GET_PROJECT = Route("GET", _P, ProjectEnvelope, idempotent=True)
DELETE_PROJECT = Route("DELETE", _P, ProjectTombstone, idempotent=False)
CACHE_SUMMARY = Route("GET", _P + "/cache/summary", CacheSummary, idempotent=True)

LIST_JOBS = Route("GET", _P + "/jobs", JobsEnvelope, idempotent=True)
CREATE_JOB = Route("POST", _P + "/jobs", JobEnvelope, idempotent=False)
RECREATE_JOB = Route("POST", _J + "/recreate", JobEnvelope, idempotent=False)
GET_JOB = Route("GET", _J, JobEnvelope, idempotent=True)
UPDATE_JOB = Route("PATCH", _J, JobEnvelope, idempotent=False)
DELETE_JOB = Route("DELETE", _J, JobTombstone, idempotent=False)
STOP_JOB = Route("POST", _J + "/stop", JobEnvelope, idempotent=False)
JOB_METRICS = Route("GET", _J + "/metrics", JobMetrics, idempotent=True)
JOB_CHECKPOINTS = Route("GET", _J + "/checkpoints", CheckpointsEnvelope, idempotent=True)
CHECKPOINT_FILES = Route("GET", _J + "/checkpoint_files", CheckpointFilesPage, idempotent=True)
JOB_DOWNLOAD = Route("GET", _J + "/download", DownloadEnvelope, idempotent=True)
JOB_LOGS = Route("GET", _J + "/logs", LogsEnvelope, idempotent=True)
SEARCH_JOBS = Route("POST", "/v1/training_jobs/search", JobsEnvelope, idempotent=True)
CAPACITY = Route("GET", "/v1/training/capacity", TrainingCapacity, idempotent=True)
# baseten 0.13.1: patch_training_capacity (not in the published spec). It sets a
# limit, so a repeat leaves the same state.
UPDATE_CAPACITY = Route("PATCH", "/v1/training/capacity", TeamCapacityEnvelope, idempotent=True)
QUEUE_CONTEXT = Route(
    "GET", "/v1/training/jobs/{job_id}/queue_context", QueueContext, idempotent=True
)
LIST_TEAMS = Route("GET", "/v1/teams", TeamsEnvelope, idempotent=True)
UPLOAD_CREDENTIALS = Route("GET", "/v1/blobs/credentials/train", BlobCredentials, idempotent=True)
AUTH_CODES = Route("GET", _J + "/auth_codes", AuthCodesEnvelope, idempotent=True)
# timeout_minutes is added to the session's timeout, so a resend would add it twice.
UPDATE_SESSION = Route(
    "PATCH",
    _J + "/interactive_sessions/{session_id}",
    InteractiveSessionUpdate,
    idempotent=False,
)
# Each call signs a new certificate and changes nothing else: safe to resend.
SIGN_SSH_KEY = Route("POST", _J + "/ssh/sign", SSHCertificate, idempotent=True)

# Query parameters.

LOG_PAGE_LIMIT = 1000
"""The most lines the API returns per log request."""


def log_params(
    start_ms: int, end_ms: int | None, direction: str, min_level: str | None
) -> dict[str, str | int]:
    """Query parameters of one log page."""
    params: dict[str, str | int] = {
        "start_epoch_millis": start_ms,
        "direction": direction,
        "limit": LOG_PAGE_LIMIT,
    }
    if end_ms is not None:
        params["end_epoch_millis"] = end_ms
    if min_level is not None:
        params["min_level"] = min_level
    return params


def checkpoint_files_params(page_size: int, token: int | None) -> dict[str, str | int]:
    """Query parameters of one page of checkpoint files."""
    return {"page_size": page_size, "page_token": token or 0}


def metrics_params(
    start_ms: int | None, end_ms: int | None, step_seconds: int | None
) -> dict[str, str | int]:
    """Query parameters of a metrics request; unset ones are left out."""
    params: dict[str, str | int] = {}
    for key, value in (
        ("start_epoch_millis", start_ms),
        ("end_epoch_millis", end_ms),
        ("step_seconds", step_seconds),
    ):
        if value is not None:
            params[key] = value
    return params
