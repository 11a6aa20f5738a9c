"""Operation names of the Baseten Training API, one per spec path and method."""

from __future__ import annotations

from typing import Final

__all__ = ["Route"]

_P = "/v1/training_projects/{training_project_id}"
_J = _P + "/jobs/{training_job_id}"


class Route:
    """Operation names (``"METHOD /path/template"``) used to target injected faults.

    Each constant is the HTTP method and the spec's path template, for example
    ``Route.CREATE_JOB == "POST /v1/training_projects/{training_project_id}/jobs"``.
    `Route.ALL` lists every operation of the spec.
    """

    LIST_TEAMS: Final = "GET /v1/teams"
    UPSERT_TEAM_PROJECT: Final = "POST /v1/teams/{team_id}/training_projects"
    LIST_PROJECTS: Final = "GET /v1/training_projects"
    UPSERT_PROJECT: Final = "POST /v1/training_projects"
    GET_PROJECT: Final = "GET " + _P
    DELETE_PROJECT: Final = "DELETE " + _P
    CACHE_SUMMARY: Final = "GET " + _P + "/cache/summary"
    LIST_JOBS: Final = "GET " + _P + "/jobs"
    CREATE_JOB: Final = "POST " + _P + "/jobs"
    GET_JOB: Final = "GET " + _J
    DELETE_JOB: Final = "DELETE " + _J
    UPDATE_JOB: Final = "PATCH " + _J
    DOWNLOAD_JOB: Final = "GET " + _J + "/download"
    RECREATE_JOB: Final = "POST " + _J + "/recreate"
    GET_LOGS: Final = "GET " + _J + "/logs"
    POST_LOGS: Final = "POST " + _J + "/logs"
    GET_METRICS: Final = "GET " + _J + "/metrics"
    POST_METRICS: Final = "POST " + _J + "/metrics"
    STOP_JOB: Final = "POST " + _J + "/stop"
    CHECKPOINTS: Final = "GET " + _J + "/checkpoints"
    CHECKPOINT_FILES: Final = "GET " + _J + "/checkpoint_files"
    AUTH_CODES: Final = "GET " + _J + "/auth_codes"
    PATCH_INTERACTIVE_SESSION: Final = "PATCH " + _J + "/interactive_sessions/{session_id}"
    SSH_SIGN: Final = "POST " + _J + "/ssh/sign"
    SEARCH_JOBS: Final = "POST /v1/training_jobs/search"
    CAPACITY: Final = "GET /v1/training/capacity"
    SET_CAPACITY: Final = "PATCH /v1/training/capacity"
    QUEUE_CONTEXT: Final = "GET /v1/training/jobs/{training_job_id}/queue_context"
    BLOB_CREDENTIALS: Final = "GET /v1/blobs/credentials/train"

    ALL: Final[tuple[str, ...]] = (
        LIST_TEAMS,
        UPSERT_TEAM_PROJECT,
        LIST_PROJECTS,
        UPSERT_PROJECT,
        GET_PROJECT,
        DELETE_PROJECT,
        CACHE_SUMMARY,
        LIST_JOBS,
        CREATE_JOB,
        GET_JOB,
        DELETE_JOB,
        UPDATE_JOB,
        DOWNLOAD_JOB,
        RECREATE_JOB,
        GET_LOGS,
        POST_LOGS,
        GET_METRICS,
        POST_METRICS,
        STOP_JOB,
        CHECKPOINTS,
        CHECKPOINT_FILES,
        AUTH_CODES,
        PATCH_INTERACTIVE_SESSION,
        SSH_SIGN,
        SEARCH_JOBS,
        CAPACITY,
        SET_CAPACITY,
        QUEUE_CONTEXT,
        BLOB_CREDENTIALS,
    )
