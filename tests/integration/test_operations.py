"""Every operation of the API has an SDK caller, and each caller reaches the fake over sockets.

The list of operations comes from the bundled spec; a new operation there fails
`test_every_operation_has_a_caller` until a method (and a row below) exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    AuthCode,
    BlobCredentials,
    CacheSummary,
    Checkpoint,
    CheckpointFile,
    Image,
    InteractiveSessionConfig,
    InteractiveSessionUpdate,
    JobMetrics,
    JobTombstone,
    LogLine,
    ProjectTombstone,
    QueueContext,
    SessionTrigger,
    SSHCertificate,
    Team,
    TeamGpuCapacity,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
    TrainingProject,
)
from baseten_training_async.testing import FakeTrainingAPI, openapi_spec

_SPEC: dict[str, Any] = openapi_spec()
_P = "/v1/training_projects/{training_project_id}"
_J = _P + "/jobs/{training_job_id}"

# Deprecated operations with no method of their own: the current operation named
# takes the same parameters (as query parameters) and returns the same response.
SUPERSEDED = {
    "POST " + _J + "/logs": "GET " + _J + "/logs",
    "POST " + _J + "/metrics": "GET " + _J + "/metrics",
}


@dataclass
class World:
    """What the callers act on: a team, a project and a pending job with a session."""

    team_id: str
    project: TrainingProject
    job: TrainingJob
    session_id: str


Caller = Callable[[AsyncTrainingClient, World], Awaitable[object]]


async def _all(pager: Any) -> list[Any]:
    return list(await pager)


def _spec() -> TrainingJobSpec:
    return TrainingJobSpec(
        image=Image(base_image="hello-world"),
        interactive_session=InteractiveSessionConfig(trigger=SessionTrigger.ON_DEMAND),
    )


# Operation -> (the SDK call that sends it, what it returns).
CALLERS: dict[str, tuple[Caller, type]] = {
    "GET /v1/teams": (lambda c, w: _all(c.teams.list()), Team),
    "POST /v1/teams/{team_id}/training_projects": (
        lambda c, w: c.projects.upsert("team-ops", team_id=w.team_id),
        TrainingProject,
    ),
    "GET /v1/training_projects": (lambda c, w: _all(c.projects.list()), TrainingProject),
    "POST /v1/training_projects": (lambda c, w: c.projects.upsert("ops-2"), TrainingProject),
    "GET " + _P: (lambda c, w: c.projects.retrieve(w.project.id), TrainingProject),
    "DELETE " + _P: (lambda c, w: c.projects.delete(w.project.id), ProjectTombstone),
    "GET " + _P + "/cache/summary": (
        lambda c, w: c.projects.cache_summary(w.project.id),
        CacheSummary,
    ),
    "GET " + _P + "/jobs": (lambda c, w: _all(c.jobs.list(w.project.id)), TrainingJob),
    "POST " + _P + "/jobs": (lambda c, w: c.jobs.create(w.project.id, _spec()), TrainingJob),
    "GET " + _J: (lambda c, w: c.jobs.retrieve(w.project.id, w.job.id), TrainingJob),
    "DELETE " + _J: (lambda c, w: c.jobs.delete(w.project.id, w.job.id), JobTombstone),
    "PATCH " + _J: (
        lambda c, w: c.jobs.update(w.project.id, w.job.id, priority=5),
        TrainingJob,
    ),
    "GET " + _J + "/download": (lambda c, w: c.jobs.download_urls(w.project.id, w.job.id), str),
    "POST " + _J + "/recreate": (lambda c, w: c.jobs.recreate(w.project.id, w.job.id), TrainingJob),
    "GET " + _J + "/logs": (lambda c, w: _all(c.jobs.logs(w.project.id, w.job.id)), LogLine),
    "GET " + _J + "/metrics": (lambda c, w: c.jobs.metrics(w.project.id, w.job.id), JobMetrics),
    "POST " + _J + "/stop": (lambda c, w: c.jobs.stop(w.project.id, w.job.id), TrainingJob),
    "GET " + _J + "/checkpoints": (
        lambda c, w: c.jobs.checkpoints(w.project.id, w.job.id),
        Checkpoint,
    ),
    "GET " + _J + "/checkpoint_files": (
        lambda c, w: _all(c.jobs.checkpoint_files(w.project.id, w.job.id)),
        CheckpointFile,
    ),
    "GET " + _J + "/auth_codes": (
        lambda c, w: c.jobs.sessions.auth_codes(w.project.id, w.job.id),
        AuthCode,
    ),
    "PATCH " + _J + "/interactive_sessions/{session_id}": (
        lambda c, w: c.jobs.sessions.update(
            w.project.id, w.job.id, w.session_id, timeout_minutes=30
        ),
        InteractiveSessionUpdate,
    ),
    "POST " + _J + "/ssh/sign": (
        lambda c, w: c.jobs.sessions.sign_ssh_key(
            w.project.id, w.job.id, public_key="ssh-ed25519 AAAAC3Nza test@host", replica_id="0"
        ),
        SSHCertificate,
    ),
    "POST /v1/training_jobs/search": (
        lambda c, w: _all(c.jobs.search(project_id=w.project.id)),
        TrainingJob,
    ),
    "GET /v1/training/capacity": (lambda c, w: c.capacity.retrieve(), TrainingCapacity),
    "PATCH /v1/training/capacity": (
        lambda c, w: c.capacity.update(team_id=w.team_id, gpu_type="H100", max_gpus=8),
        TeamGpuCapacity,
    ),
    "GET /v1/training/jobs/{training_job_id}/queue_context": (
        lambda c, w: c.jobs.queue_context(w.job.id),
        QueueContext,
    ),
    "GET /v1/blobs/credentials/train": (
        lambda c, w: c.artifacts.upload_credentials(),
        BlobCredentials,
    ),
}


def _spec_operations() -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in _SPEC["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_has_a_caller() -> None:
    operations = set(_spec_operations())
    # The bundled spec has baseten 0.13.1's capacity PATCH on top of the published 28.
    assert "PATCH /v1/training/capacity" in operations
    covered = set(CALLERS) | set(SUPERSEDED)
    assert operations - covered == set(), "operations without an SDK caller"
    assert covered - operations == set(), "callers of operations the API does not have"
    print(
        f"\n{len(operations)} operations: {len(CALLERS)} with a method, "
        f"{len(SUPERSEDED)} deprecated ones served by their current form"
    )


@pytest.mark.parametrize(("old", "new"), sorted(SUPERSEDED.items()))
def test_superseded_operations_are_deprecated_and_fully_replaced(old: str, new: str) -> None:
    operations = _spec_operations()
    assert operations[old].get("deprecated") is True
    body_ref = operations[old]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_fields = set(_SPEC["components"]["schemas"][body_ref.rsplit("/", 1)[1]]["properties"])
    query = {p["name"] for p in operations[new]["parameters"] if p["in"] == "query"}
    assert body_fields <= query
    assert operations[old]["responses"]["200"] == operations[new]["responses"]["200"]


@pytest.fixture
async def world(api: FakeTrainingAPI, client: AsyncTrainingClient) -> World:
    api.capacity = 0  # the job stays pending, so that its priority can change
    teams = await client.teams.list()
    project = await client.projects.upsert("ops")
    job = await client.jobs.create(project.id, _spec())
    (code, *_) = await client.jobs.sessions.auth_codes(project.id, job.id)
    api.set_checkpoints(job.id, 1)
    api.set_checkpoint_files(job.id, 2)
    api.add_logs(job.id, [(int(api.clock.now() * 1e9), "step 1", "INFO", "0")])
    return World(team_id=teams[0].id, project=project, job=job, session_id=code.session_id)


def _cases() -> list[Any]:
    cases: list[Any] = []
    for operation in sorted(CALLERS):
        cases.append(pytest.param(operation, id=operation))
    return cases


@pytest.mark.parametrize("operation", _cases())
async def test_each_caller_reaches_its_operation(
    api: FakeTrainingAPI, client: AsyncTrainingClient, world: World, operation: str
) -> None:
    call, returns = CALLERS[operation]
    before = len(api.requests_for(operation))
    result = await call(client, world)
    items = result if isinstance(result, list) else [result]
    assert items, "an empty answer shows nothing of the decoding"
    assert all(isinstance(item, returns) for item in items), result
    sent = api.requests_for(operation)[before:]
    assert [r.status for r in sent] == [200]


async def test_a_capacity_only_update_reaches_the_fake(
    api: FakeTrainingAPI, client: AsyncTrainingClient, world: World
) -> None:
    # baseten 0.13.1: UpdateTrainingJobRequest makes priority optional.
    job = await client.jobs.update(world.project.id, world.job.id, availability_model="spot")
    assert job.availability_model == "spot"
    (record,) = api.requests_for("PATCH " + _J)
    assert record.body == {"availability_model": "spot"}
