"""What the integrations share: how a finished job is judged, and job names."""

from __future__ import annotations

import hashlib
import re

from baseten_training_async import JobStatus, TrainingJob

__all__ = ["MAX_NAME_LENGTH", "failure_message", "job_name"]

MAX_NAME_LENGTH = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def failure_message(job: TrainingJob) -> str | None:
    """None when the job completed; otherwise why it did not, with its error."""
    if job.current_status == JobStatus.COMPLETED:
        return None
    detail = f": {job.error_message}" if job.error_message else ""
    return f"training job {job.id} ended {job.current_status}{detail}"


def job_name(*parts: str) -> str:
    """A deterministic job name from orchestrator ids (the same ids, the same name).

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``-``;
    a name longer than `MAX_NAME_LENGTH` is cut and ends with a hash of the whole.
    """
    name = ".".join(_UNSAFE.sub("-", part).strip("-") or "-" for part in parts)
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_NAME_LENGTH - 17]}-{digest}"
