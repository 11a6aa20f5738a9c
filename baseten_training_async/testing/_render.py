"""Wire rendering of the fake's records: jobs, projects, instance types, checkpoints."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._models import DEPLOY_FAILED, FAILED, TERMINAL_STATUSES, StoredJob, StoredProject
from ._rules import memory_mib

if TYPE_CHECKING:
    from ._store import Store

__all__ = [
    "auth_code",
    "checkpoint_file",
    "checkpoint_record",
    "generated_checkpoint_names",
    "instance_type_for",
    "iso",
    "render_job",
    "render_project",
]

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


def iso(epoch_seconds: float) -> str:
    """Format epoch seconds as an ISO 8601 UTC timestamp.

    Args:
        epoch_seconds: Seconds since the epoch.

    Returns:
        For example ``"2023-11-14T22:13:20.000000Z"``.
    """
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    mib = memory_mib(memory)
    accelerator = compute.get("accelerator")
    if isinstance(accelerator, Mapping):
        gpu = str(accelerator.get("accelerator", "GPU"))
        count = accelerator.get("count", 1)
        count = count if isinstance(count, int) else 1
        name = f"{gpu}x{count}"
        return {
            "id": name,
            "name": f"{name} ({cpu} vCPU, {memory})",
            "memory_limit_mib": mib,
            "millicpu_limit": cpu * 1000,
            "gpu_count": count,
            "gpu_type": gpu,
            "gpu_memory_limit_mib": _GPU_MEMORY_MIB.get(gpu.upper()),
        }
    name = f"CPU-{cpu}x{memory}"
    return {
        "id": name,
        "name": name,
        "memory_limit_mib": mib,
        "millicpu_limit": cpu * 1000,
        "gpu_count": 0,
        "gpu_type": None,
        "gpu_memory_limit_mib": None,
    }


def render_job(store: Store, job: StoredJob, now: float) -> dict[str, Any]:
    """Render a ``TrainingJobV1``.

    Args:
        store: The state the job belongs to.
        job: The job.
        now: Current fake time.

    Returns:
        The wire object.
    """
    status = job.status_at(now)
    project = store.projects.get(job.project_id)
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


def render_project(store: Store, project: StoredProject, now: float) -> dict[str, Any]:
    """Render a ``TrainingProjectV1`` (with ``latest_job``).

    Args:
        store: The state the project belongs to.
        project: The project.
        now: Current fake time.

    Returns:
        The wire object.
    """
    latest = store.latest_job(project)
    return {
        "id": project.id,
        "name": project.name,
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
        "team_name": project.team_name,
        "latest_job": render_job(store, latest, now) if latest is not None else None,
    }


def auth_code(job_id: str, node: int) -> str:
    digest = f"{zlib.crc32(f'{job_id}:{node}'.encode()):08X}"
    return f"{digest[:4]}-{digest[4:]}"


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
