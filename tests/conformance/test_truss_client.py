"""truss 0.18.35's ``BasetenApi`` training calls against the fake, ``truss train push`` included.

truss maps an app URL to its REST API through a fixed table; the fake's URL is added
to that table (as truss's own remotes are), so every call below is truss's code as
it ships. The push goes through truss's own ``_upsert_project_and_create_job`` with
only the S3 upload of the archive replaced (no network leaves this machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import truss.remote.baseten.api as truss_api
import truss_train.deployment as truss_deployment
from truss.base.truss_config import AcceleratorSpec
from truss.remote.baseten import custom_types as b10_types
from truss.remote.baseten.remote import BasetenRemote
from truss_train.definitions import (
    Compute,
    Image,
    InteractiveSession,
    Runtime,
    TrainingJob,
    TrainingProject,
    Workspace,
)

from baseten_training_async.testing import Route

from .conftest import FakeThread, Recorder

CLIENT = "truss"
ONLY_PENDING = "priority changes only on a PENDING job (spec: UpdateTrainingJobRequestV1)"
NO_SUCH_ROUTE = (
    "no such route: PATCH .../interactive_session is in neither the published spec nor "
    "baseten 0.13.1 (the API has .../interactive_sessions/{session_id})"
)


@pytest.fixture
def remote(fake: FakeThread, monkeypatch: pytest.MonkeyPatch) -> BasetenRemote:
    monkeypatch.setitem(truss_api.API_URL_MAPPING, fake.url, fake.url)
    made = BasetenRemote(fake.url, api_key=fake.api.api_key)
    assert made.api.rest_api_url == fake.url
    return made


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replace the archive's S3 upload, the one step of a push that leaves the API."""
    seen: list[tuple[str, str]] = []

    def upload(path: str, bucket: str, key: str, creds: Any, *args: Any, **kwargs: Any) -> None:
        assert Path(path).stat().st_size > 0
        seen.append((bucket, key))

    monkeypatch.setattr(truss_deployment.transfer, "multipart_upload_boto3", upload)
    return seen


def training_project(name: str, *, team_name: str | None = None) -> TrainingProject:
    job = TrainingJob(
        image=Image(base_image="pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime"),
        compute=Compute(accelerator=AcceleratorSpec(accelerator="H100", count=2), node_count=1),
        runtime=Runtime(start_commands=["python train.py"], environment_variables={"A": "1"}),
        interactive_session=InteractiveSession(),
        name=f"{name}-job",
        workspace=Workspace(exclude_dirs=[]),
    )
    return TrainingProject(name=name, job=job, team_name=team_name)


# truss 0.18.35 archives the workspace with a pathspec API that pathspec now deprecates.
@pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")
def test_truss_training_calls(
    fake: FakeThread, remote: BasetenRemote, uploads: list[tuple[str, str]], tmp_path: Path
) -> None:
    rec = Recorder(fake, CLIENT)
    api = remote.api
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.py").write_text("# a training project\n")
    (source / "train.py").write_text("print('train')\n")

    # `truss train push`: upsert, blob credentials, (upload), create.
    job = rec.sync(
        "truss train push (upsert + blob credentials + create)",
        lambda: truss_deployment._upsert_project_and_create_job(
            remote, training_project("truss-push"), source
        ),
    )
    assert job is not None
    assert uploads
    create = fake.api.requests_for(Route.CREATE_JOB)[-1].body["training_job"]
    assert "workspace" in create  # the field the old fake refused
    assert create["runtime"]["artifacts"][0]["s3_key"] == uploads[-1][1]
    team_id = next(iter(fake.api.teams))
    team = fake.api.teams[team_id]
    rec.sync(
        "truss train push --team (team upsert with team_name + create)",
        lambda: truss_deployment._upsert_project_and_create_job(
            remote, training_project("truss-team", team_name=team.name), source, team_id=team_id
        ),
    )
    upsert = fake.api.requests_for(Route.UPSERT_TEAM_PROJECT)[-1].body
    assert upsert["training_project"]["team_name"] == team.name

    project_id = job["training_project"]["id"]
    job_id = job["id"]
    rec.sync(
        "upsert_training_project",
        lambda: api.upsert_training_project(training_project("truss-push")),
    )
    rec.sync("list_training_projects", api.list_training_projects)
    rec.sync("list_training_jobs", lambda: api.list_training_jobs(project_id))
    rec.sync("get_training_job", lambda: api.get_training_job(project_id, job_id))
    rec.sync(
        "search_training_jobs",
        lambda: api.search_training_jobs(project_id=project_id, statuses=None),
    )
    fake.clock.advance(5)  # RUNNING: logs and metrics have content
    logs = rec.sync("get_training_job_logs", lambda: api.get_training_job_logs(project_id, job_id))
    assert logs
    rec.sync(
        "_fetch_log_batch (log follow)",
        lambda: api._fetch_log_batch(project_id, job_id, {"limit": 10, "direction": "asc"}),
    )
    rec.sync("get_training_job_metrics", lambda: api.get_training_job_metrics(project_id, job_id))
    rec.sync("get_cache_summary", lambda: api.get_cache_summary(project_id))
    fake.api.set_checkpoints(job_id, 2)
    fake.api.set_checkpoint_files(job_id, 5)
    rec.sync(
        "list_training_job_checkpoints",
        lambda: api.list_training_job_checkpoints(project_id, job_id),
    )
    files = rec.sync(
        "get_training_job_checkpoint_presigned_url (paged)",
        lambda: api.get_training_job_checkpoint_presigned_url(project_id, job_id, page_size=2),
    )
    assert files is not None
    assert len(files) == 5
    rec.sync(
        "get_training_job_presigned_url",
        lambda: api.get_training_job_presigned_url(project_id, job_id),
    )
    codes = rec.sync(
        "get_training_job_isession (auth codes)",
        lambda: api.get_training_job_isession(project_id, job_id),
    )
    assert codes is not None
    session_id = codes["auth_codes"][0]["session_id"]
    rec.sync(
        "patch_interactive_session",
        lambda: api.patch_interactive_session(
            project_id, job_id, session_id, timeout_minutes=30, trigger="on_demand"
        ),
    )
    rec.sync(
        "update_interactive_session",
        lambda: api.update_interactive_session(project_id, job_id, timeout_minutes=30),
        refused=NO_SUCH_ROUTE,
    )
    rec.sync(
        "sign_ssh_certificate",
        lambda: api.sign_ssh_certificate(project_id, job_id, "ssh-ed25519 AAAAC3Nza t", "g00r0"),
    )
    rec.sync(
        "get_blob_credentials(TRAIN)",
        lambda: api.get_blob_credentials(b10_types.BlobType.TRAIN),
    )
    rec.sync("get_training_capacity", api.get_training_capacity)
    rec.sync(
        "update_team_training_gpu_capacity",
        lambda: api.update_team_training_gpu_capacity(team_id, "H100", 16),
    )
    rec.sync(
        "update_training_job(priority, RUNNING)",
        lambda: api.update_training_job(project_id, job_id, priority=3),
        refused=ONLY_PENDING,
    )
    fake.api.capacity = len([j for j in fake.api.jobs.values() if j.released_at is not None])
    pending = fake.api.add_job(project_id)
    rec.sync(
        "update_training_job(priority, PENDING)",
        lambda: api.update_training_job(project_id, pending.id, priority=3),
    )
    fake.api.capacity = None
    rec.sync("recreate_training_job", lambda: api.recreate_training_job(project_id, job_id))
    rec.sync("stop_training_job", lambda: api.stop_training_job(project_id, job_id))
