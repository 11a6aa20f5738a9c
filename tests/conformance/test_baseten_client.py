"""Every training operation of ``baseten`` 0.13.1's async management client, against the fake.

The generated client validates each response with its own pydantic models, so a call
that succeeds here is also a check that the fake answers what the official models
expect.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from baseten.client import AsyncManagementClient
from baseten.client.managementapi import _models as m
from baseten.client.managementapi._client import AsyncApiClient

from baseten_training_async.testing import Route

from .conftest import FakeThread, Recorder

CLIENT = "baseten"
ONLY_PENDING = (
    "priority and availability_model change only on a PENDING job "
    "(spec: UpdateTrainingJobRequestV1)"
)


def training_operations() -> dict[str, str]:
    """AsyncApiClient methods whose path is a route of the training API: name -> route."""
    found: dict[str, str] = {}
    for name, method in inspect.getmembers(AsyncApiClient, inspect.iscoroutinefunction):
        source = inspect.getsource(method)
        path = re.search(r'path_fmt="([^"]+)"', source)
        verb = re.search(r'method="(\w+)"', source)
        if path is None or verb is None:
            continue
        for route in Route.ALL:
            method, template = route.split(" ", 1)
            if re.sub(r"\{[^}]+\}", "{}", template) == path[1] and method == verb[1]:
                found[name] = route
    return found


class Calls:
    """Proxy of ``client.api`` that remembers which methods were called."""

    def __init__(self, api: AsyncApiClient) -> None:
        self._api = api
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self._api, name)


def job_request(**job: Any) -> m.CreateTrainingJobRequest:
    job.setdefault("image", m.CreateTrainingJobImage(base_image="hello-world"))
    return m.CreateTrainingJobRequest(training_job=m.CreateTrainingJob(**job))


async def test_every_operation_of_the_official_async_client(fake: FakeThread) -> None:
    operations = training_operations()
    assert len(operations) == len(Route.ALL) == 29
    rec = Recorder(fake, CLIENT)
    async with AsyncManagementClient(
        api_key=fake.api.api_key, base_url_override=fake.url
    ) as client:
        api = Calls(client.api)

        teams = await rec.call("get_teams", api.get_teams())
        assert teams is not None
        team_id = teams.teams[0].id
        await rec.call(
            "get_teams(name=)", api.get_teams(params=m.GetTeamsParams(name=teams.teams[0].name))
        )
        upsert = m.UpsertTrainingProjectRequest(
            training_project=m.UpsertTrainingProject(name="official")
        )
        created = await rec.call(
            "post_training_projects", api.post_training_projects(request=upsert)
        )
        assert created is not None
        project_id = created.training_project.id
        await rec.call(
            "post_teams_training_projects",
            api.post_teams_training_projects(team_id=team_id, request=upsert),
        )
        await rec.call("get_training_projects", api.get_training_projects())
        await rec.call(
            "get_training_projects_training_project_id",
            api.get_training_projects_training_project_id(training_project_id=project_id),
        )

        # Creates: minimal, the docs' example (nulls included), explicit None everywhere,
        # and the fields only 0.13.1 knows.
        job = await rec.call(
            "post_training_projects_jobs",
            api.post_training_projects_jobs(
                training_project_id=project_id,
                request=job_request(
                    name="official-1",
                    interactive_session=m.InteractiveSessionConfig(timeout_minutes=60),
                ),
            ),
        )
        assert job is not None
        job_id = job.training_job.id
        docs_example = job_request(
            name="gpt-oss-job",
            compute=m.CreateTrainingJobCompute(
                node_count=1,
                cpu_count=4,
                memory="16Gi",
                accelerator=m.CreateTrainingJobAccelerator(accelerator="H100", count=2),
            ),
            runtime=m.CreateTrainingJobRuntime(
                start_commands=["python train.py"],
                environment_variables={"HF_TOKEN": m.SecretReference(name="hf_access_token")},
                artifacts=None,
                enable_cache=True,
            ),
            weights=[
                m.CreateJobWeightConfig(
                    source="hf://meta-llama/Llama-3-8B@main", mount_location="/app/models"
                )
            ],
        )
        await rec.call(
            "post_training_projects_jobs(docs example, artifacts=null)",
            api.post_training_projects_jobs(training_project_id=project_id, request=docs_example),
        )
        nones = job_request(
            compute=None,
            runtime=m.CreateTrainingJobRuntime(
                start_commands=None,
                environment_variables=None,
                checkpointing_config=None,
                load_checkpoint_config=m.LoadCheckpointConfig(checkpoints=None),
            ),
            weights=None,
            name="nulls",
        )
        await rec.call(
            "post_training_projects_jobs(explicit None)",
            api.post_training_projects_jobs(training_project_id=project_id, request=nones),
        )
        newer = job_request(
            name="newer-fields",
            image=m.CreateTrainingJobImage(
                base_image="123.dkr.ecr.us-east-1.amazonaws.com/train:1",
                docker_auth=m.DockerAuth(
                    registry="123.dkr.ecr.us-east-1.amazonaws.com",
                    auth_method="AWS_ASSUME_ROLE",
                    aws_assume_role_docker_auth=m.AwsAssumeRoleDockerAuth(
                        role_arn="arn:aws:iam::123:role/pull", region="us-east-1"
                    ),
                ),
            ),
            compute=m.CreateTrainingJobCompute(node_count=2, availability_model="spot"),
            weights=[
                m.CreateJobWeightConfig(
                    source="cw://bucket/models/llama",
                    mount_location="/models",
                    auth=m.TrainingWeightAuth(
                        auth_method="AWS_ASSUME_ROLE",
                        aws_assume_role_arn="arn:aws:iam::123:role/weights",
                        aws_assume_role_region="us-east-1",
                    ),
                )
            ],
        )
        made = await rec.call(
            "post_training_projects_jobs(AWS_ASSUME_ROLE, cw://, spot)",
            api.post_training_projects_jobs(training_project_id=project_id, request=newer),
        )
        assert made is not None
        assert made.training_job.node_count == 2

        ids = {"training_project_id": project_id, "training_job_id": job_id}
        await rec.call(
            "get_training_projects_jobs",
            api.get_training_projects_jobs(training_project_id=project_id),
        )
        await rec.call(
            "get_training_projects_jobs_training_job_id",
            api.get_training_projects_jobs_training_job_id(**ids),
        )
        await rec.call(
            "get_training_projects_cache_summary",
            api.get_training_projects_cache_summary(training_project_id=project_id),
        )
        fake.clock.advance(5)  # the first job is RUNNING now
        await rec.call(
            "get_training_projects_jobs_logs",
            api.get_training_projects_jobs_logs(
                **ids, params=m.GetTrainingProjectsJobsLogsParams(limit=10, direction="desc")
            ),
        )
        await rec.call(
            "post_training_projects_jobs_logs",
            api.post_training_projects_jobs_logs(
                **ids, request=m.GetTrainingJobLogsRequest(limit=10)
            ),
        )
        await rec.call(
            "get_training_projects_jobs_metrics",
            api.get_training_projects_jobs_metrics(
                **ids, params=m.GetTrainingProjectsJobsMetricsParams(step_seconds=1)
            ),
        )
        await rec.call(
            "post_training_projects_jobs_metrics",
            api.post_training_projects_jobs_metrics(
                **ids, request=m.GetTrainingJobMetricsRequest(step_seconds=1)
            ),
        )
        fake.api.set_checkpoints(job_id, 2)
        fake.api.set_checkpoint_files(job_id, 5)
        await rec.call(
            "get_training_projects_jobs_checkpoints",
            api.get_training_projects_jobs_checkpoints(**ids),
        )
        await rec.call(
            "get_training_projects_jobs_checkpoint_files",
            api.get_training_projects_jobs_checkpoint_files(
                **ids, params=m.GetTrainingProjectsJobsCheckpointFilesParams(page_size=2)
            ),
        )
        await rec.call(
            "get_training_projects_jobs_download", api.get_training_projects_jobs_download(**ids)
        )
        codes = await rec.call(
            "get_training_projects_jobs_auth_codes",
            api.get_training_projects_jobs_auth_codes(**ids),
        )
        assert codes is not None
        assert codes.auth_codes
        session_id = codes.auth_codes[0].session_id
        await rec.call(
            "patch_training_projects_jobs_interactive_sessions",
            api.patch_training_projects_jobs_interactive_sessions(
                **ids,
                session_id=session_id,
                request=m.PatchInteractiveSessionRequest(timeout_minutes=30),
            ),
        )
        await rec.call(
            "post_training_projects_jobs_ssh_sign",
            api.post_training_projects_jobs_ssh_sign(
                **ids,
                request=m.SignSSHCertificateRequest(
                    public_key="ssh-ed25519 AAAAC3Nza official", replica_id="g00r0"
                ),
            ),
        )
        await rec.call(
            "post_training_jobs_search",
            api.post_training_jobs_search(
                request=m.SearchTrainingJobsRequest(
                    project_id=project_id, statuses=["TRAINING_JOB_RUNNING"]
                )
            ),
        )
        await rec.call("get_training_capacity", api.get_training_capacity())
        await rec.call(
            "patch_training_capacity",
            api.patch_training_capacity(
                request=m.PatchTeamTrainingGpuCapacityRequest(
                    team_id=team_id, gpu_type="H100", max_gpus=16
                )
            ),
        )
        await rec.call(
            "get_training_jobs_queue_context",
            api.get_training_jobs_queue_context(training_job_id=job_id),
        )
        await rec.call("get_blobs_credentials_train", api.get_blobs_credentials_train())

        # Updates: a PENDING job takes them, a running one refuses (a rule of the API).
        fake.api.capacity = len([j for j in fake.api.jobs.values() if j.released_at is not None])
        pending = await rec.call(
            "post_training_projects_jobs(over capacity: PENDING)",
            api.post_training_projects_jobs(
                training_project_id=project_id, request=job_request(name="queued")
            ),
        )
        assert pending is not None
        assert pending.training_job.current_status == "TRAINING_JOB_PENDING"
        pending_ids = {
            "training_project_id": project_id,
            "training_job_id": pending.training_job.id,
        }
        await rec.call(
            "patch_training_projects_jobs(priority, PENDING)",
            api.patch_training_projects_jobs(
                **pending_ids, request=m.UpdateTrainingJobRequest(priority=5)
            ),
        )
        updated = await rec.call(
            "patch_training_projects_jobs(availability_model, PENDING)",
            api.patch_training_projects_jobs(
                **pending_ids, request=m.UpdateTrainingJobRequest(availability_model="spot")
            ),
        )
        assert updated is not None
        assert updated.training_job.availability_model == "spot"
        await rec.call(
            "patch_training_projects_jobs(priority, RUNNING)",
            api.patch_training_projects_jobs(**ids, request=m.UpdateTrainingJobRequest(priority=5)),
            refused=ONLY_PENDING,
        )
        fake.api.capacity = None

        await rec.call(
            "post_training_projects_jobs_recreate",
            api.post_training_projects_jobs_recreate(**ids),
        )
        await rec.call(
            "post_training_projects_jobs_stop",
            api.post_training_projects_jobs_stop(**ids, request=m.StopTrainingJobRequest()),
        )
        await rec.call("delete_training_projects_jobs", api.delete_training_projects_jobs(**ids))
        await rec.call(
            "delete_training_projects",
            api.delete_training_projects(training_project_id=project_id),
        )

    missing = set(operations) - api.used
    assert not missing, f"operations of the official client never called: {sorted(missing)}"
    assert {operations[name] for name in api.used if name in operations} == set(Route.ALL)
