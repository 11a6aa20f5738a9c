"""Fixed, spec-valid response bodies and the one job spec every client sends.

Stdlib only: imported by the server and by every client process, so it must
not add a dependency (or import time) that one client pays and another does not.
"""

from __future__ import annotations

import json
from typing import Any

PROJECT_ID = "bench-project"
PROJECT_NAME = "bench"
N_PROJECTS = 1000

# The job every client creates: an image, two H100s and a start command.
BASE_IMAGE = "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"
ACCELERATOR = "H100"
ACCELERATOR_COUNT = 2
START_COMMANDS = ["python train.py --epochs 3"]


def job_name(i: int) -> str:
    return f"bench-job-{i}"


def spec_dict(i: int) -> dict[str, Any]:
    """The create-job payload (``CreateTrainingJobV1``) as plain JSON data."""
    return {
        "image": {"base_image": BASE_IMAGE},
        "compute": {"accelerator": {"accelerator": ACCELERATOR, "count": ACCELERATOR_COUNT}},
        "runtime": {"start_commands": START_COMMANDS},
        "name": job_name(i),
    }


def _job(i: int, project_id: str = PROJECT_ID, project_name: str = PROJECT_NAME) -> dict[str, Any]:
    """A ``TrainingJobV1`` with every field set, as the real API sends it."""
    return {
        "id": f"job{i:08d}",
        "created_at": "2025-06-01T12:00:00.123456Z",
        "current_status": "TRAINING_JOB_CREATED",
        "error_message": None,
        "instance_type": {
            "id": "H100x2x32x256",
            "name": "H100:2x32x256",
            "memory_limit_mib": 262144,
            "millicpu_limit": 32000,
            "gpu_count": 2,
            "gpu_type": "H100",
            "gpu_memory_limit_mib": 81920,
        },
        "updated_at": "2025-06-01T12:00:01.654321Z",
        "training_project_id": project_id,
        "training_project": {"id": project_id, "name": project_name},
        "name": job_name(i),
        "checkpoint_sync_status": None,
        "priority": 0,
        "availability_model": "dedicated",
        "user": {"email": "bench@example.com"},
    }


def _project(i: int) -> dict[str, Any]:
    """A ``TrainingProjectV1`` with its latest job embedded."""
    pid = f"proj{i:06d}"
    name = f"project-{i}"
    return {
        "id": pid,
        "name": name,
        "created_at": "2025-05-01T08:00:00.000000Z",
        "updated_at": "2025-06-01T12:00:01.654321Z",
        "team_name": "Default Team",
        "latest_job": _job(i, pid, name),
    }


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def create_job_body() -> bytes:
    """``CreateTrainingJobResponseV1``."""
    return _dump({"training_job": _job(1)})


def projects_body(n: int = N_PROJECTS) -> bytes:
    """``ListTrainingProjectsResponseV1`` with ``n`` projects."""
    return _dump({"training_projects": [_project(i) for i in range(n)]})


def project_body() -> bytes:
    """``UpsertTrainingProjectResponseV1`` / ``GetTrainingProjectResponseV1``."""
    project = _project(0)
    project["id"], project["name"] = PROJECT_ID, PROJECT_NAME
    return _dump({"training_project": project})


def jobs_body() -> bytes:
    """``ListTrainingJobsResponseV1``: the project has no jobs yet."""
    project = json.loads(project_body())["training_project"]
    return _dump({"training_project": project, "training_jobs": []})


def get_job_body() -> bytes:
    """``GetTrainingJobResponseV1``."""
    project = json.loads(project_body())["training_project"]
    return _dump({"training_project": project, "training_job": _job(1)})


def search_body() -> bytes:
    """``SearchTrainingJobsResponseV1``."""
    return _dump({"training_jobs": []})
