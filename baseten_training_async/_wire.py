"""Request and response envelopes: the API wraps most payloads in one key."""

from __future__ import annotations

import msgspec

from .models import (
    Checkpoint,
    CheckpointFile,
    LogLine,
    TrainingJob,
    TrainingProject,
)


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


class ProjectName(msgspec.Struct):
    name: str


class UpsertProjectRequest(msgspec.Struct):
    training_project: ProjectName


class OrderBy(msgspec.Struct):
    field: str
    order: str


class SearchRequest(msgspec.Struct, omit_defaults=True):
    project_id: str | None = None
    job_id: str | None = None
    statuses: list[str] | None = None
    order_by: list[OrderBy] = msgspec.field(default_factory=list)


class UpdateJobRequest(msgspec.Struct):
    priority: int
