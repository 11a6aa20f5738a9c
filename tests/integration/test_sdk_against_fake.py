"""Every SDK method against the fake Training API over real loopback sockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    AuthenticationError,
    BadRequestError,
    JobStatus,
    NotFoundError,
    PaginationError,
    TrainingJob,
    WaitTimeoutError,
)
from baseten_training_async.testing import FakeTrainingAPI, Route
from tests.unit.test_models import DOCS_EXAMPLE

MINIMAL = {"image": {"base_image": "hello-world"}}


async def test_headers_identify_the_sdk_and_authenticate(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    await client.projects.list()
    (record,) = api.requests
    headers = {k.lower(): v for k, v in record.headers.items()}
    assert headers["user-agent"].startswith("baseten-training-async/")
    assert api.api_key not in str(record)
    assert headers["authorization"] != f"Api-Key {api.api_key}"  # redacted in the log


async def test_bad_key_is_an_authentication_error(api: FakeTrainingAPI) -> None:
    async with AsyncTrainingClient("wrong-key", base_url=api.url) as client:
        with pytest.raises(AuthenticationError):
            await client.projects.list()
    assert len(api.requests) == 1  # never retried


async def test_projects(api: FakeTrainingAPI, client: AsyncTrainingClient) -> None:
    first = await client.projects.upsert("alpha")
    api.clock.advance(1)
    again = await client.projects.upsert("alpha")
    assert again.id == first.id
    assert again.updated_at != first.updated_at
    team = next(iter(api.teams.values()))
    in_team = await client.projects.upsert("beta", team_id=team.id)
    assert in_team.team_name == team.name
    listed = await client.projects.list()
    assert {p.name for p in listed} == {"alpha", "beta"}
    assert [p.id async for p in client.projects.list()] == [p.id for p in listed]
    assert (await client.projects.retrieve(first.id)).name == "alpha"
    summary = await client.projects.cache_summary(first.id)
    assert summary.project_id == first.id
    assert (await client.projects.delete(in_team.id)).deleted
    with pytest.raises(NotFoundError):
        await client.projects.retrieve(in_team.id)
    with pytest.raises(NotFoundError):
        await client.projects.upsert("x", team_id="no-such-team")


async def test_docs_example_creates_a_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("docs")
    job = await client.jobs.create(project.id, DOCS_EXAMPLE)
    assert job.current_status == JobStatus.CREATED
    assert job.training_project.id == project.id
    assert job.instance_type.gpu_count == 2
    stored = api.jobs[job.id]
    assert stored.spec["compute"]["accelerator"] == {"accelerator": "H100", "count": 2}
    assert "artifacts" not in stored.spec["runtime"]


async def test_job_lifecycle(api: FakeTrainingAPI, client: AsyncTrainingClient) -> None:
    project = await client.projects.upsert("life")
    job = await client.jobs.create(project.id, {**MINIMAL, "name": "run-1"})
    again = await client.jobs.recreate(project.id, job.id)
    assert again.id != job.id
    assert {j.id for j in await client.jobs.list(project.id)} == {job.id, again.id}
    assert (await client.jobs.retrieve(project.id, job.id)).name == "run-1"

    found = await client.jobs.find(job.id)
    assert found.training_project_id == project.id
    with pytest.raises(NotFoundError):
        await client.jobs.find("nope")

    api.clock.advance(1)
    third = await client.jobs.create(project.id, {**MINIMAL, "name": "run-3"})
    newest_first = [j.id for j in await client.jobs.search(project_id=project.id)]
    assert newest_first[0] == third.id
    assert newest_first[-1] in {job.id, again.id}
    oldest_first = [j.id for j in await client.jobs.search(project_id=project.id, order="asc")]
    assert oldest_first[-1] == third.id
    assert await client.jobs.search(project_id=project.id, statuses=["TRAINING_JOB_RUNNING"]) == []

    api.force_status(job.id, JobStatus.PENDING)  # only pending jobs take a new priority
    updated = await client.jobs.update(project.id, job.id, priority=7)
    assert updated.priority == 7
    stopped = await client.jobs.stop(project.id, job.id)
    assert stopped.current_status == JobStatus.STOPPED
    tomb = await client.jobs.delete(project.id, again.id)
    assert tomb.deleted
    assert tomb.training_project_id == project.id
    with pytest.raises(NotFoundError):
        await client.jobs.retrieve(project.id, again.id)
    with pytest.raises(BadRequestError, match="PENDING"):
        await client.jobs.update(project.id, third.id, priority=1)


async def test_observing_a_job(api: FakeTrainingAPI, client: AsyncTrainingClient) -> None:
    project = await client.projects.upsert("obs")
    job = await client.jobs.create(project.id, MINIMAL)
    api.set_checkpoints(job.id, 3)
    api.clock.advance(120)
    now = datetime.fromtimestamp(api.clock.now(), UTC)
    metrics = await client.jobs.metrics(
        project.id, job.id, start=now - timedelta(minutes=5), end=now, step_seconds=60
    )
    assert metrics.training_job.id == job.id
    query = api.requests_for(Route.GET_METRICS)[-1].query
    assert query["step_seconds"] == "60"
    assert query["end_epoch_millis"] == str(int(now.timestamp() * 1000))
    assert len(await client.jobs.checkpoints(project.id, job.id)) == 3
    urls = await client.jobs.download_urls(project.id, job.id)
    assert all(u.startswith("http") for u in urls)
    capacity = await client.jobs.capacity()
    assert capacity.gpu_capacities


async def test_checkpoint_files_over_seven_pages(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("ckpt")
    job = await client.jobs.create(project.id, MINIMAL)
    api.set_checkpoint_files(job.id, 65)
    pager = client.jobs.checkpoint_files(project.id, job.id, page_size=10)
    pages = [page async for page in pager.pages()]
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 10, 5]
    names = [f.relative_file_name for page in pages for f in page]
    assert len(names) == len(set(names)) == 65
    assert len(api.requests_for(Route.CHECKPOINT_FILES)) == 7

    api.inject("repeat_page_token", times=1)
    with pytest.raises(PaginationError, match="repeated page_token"):
        await client.jobs.checkpoint_files(project.id, job.id, page_size=10)

    api.clear_faults()
    api.inject("empty_page", times=1)
    assert await client.jobs.checkpoint_files(project.id, job.id, page_size=10) == []


@pytest.mark.parametrize(
    "final", [JobStatus.COMPLETED, JobStatus.FAILED, "TRAINING_JOB_SOMETHING_NEW"]
)
async def test_wait_returns_on_terminal_and_unknown_statuses(
    api: FakeTrainingAPI, client: AsyncTrainingClient, final: str
) -> None:
    project = await client.projects.upsert("wait")
    job = await client.jobs.create(project.id, MINIMAL)
    seen: list[str] = []

    async def finish_later() -> None:
        await asyncio.sleep(0.05)
        api.force_status(job.id, JobStatus.RUNNING)
        await asyncio.sleep(0.05)
        api.force_status(job.id, final)

    finisher = asyncio.create_task(finish_later())
    done = await client.jobs.wait(
        project.id,
        job.id,
        timeout=10,
        poll_interval=0.01,
        on_status_change=lambda j: seen.append(j.current_status),
    )
    await finisher
    assert done.current_status == final
    assert seen[0] == JobStatus.CREATED
    assert seen[-1] == final
    assert JobStatus.RUNNING in seen


async def test_wait_times_out_with_the_last_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("wait-timeout")
    job = await client.jobs.create(project.id, MINIMAL)
    with pytest.raises(WaitTimeoutError) as info:
        await client.jobs.wait(project.id, job.id, timeout=0.2, poll_interval=0.05)
    assert isinstance(info.value.job, TrainingJob)
    assert info.value.job.id == job.id
    assert isinstance(info.value, TimeoutError)
