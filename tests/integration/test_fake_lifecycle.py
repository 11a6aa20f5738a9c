"""Job lifecycles on the fake clock: preemption, checkpoints saved while running, history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings, Route

T0 = 1_700_000_000.0
CREATED = "TRAINING_JOB_CREATED"
DEPLOYING = "TRAINING_JOB_DEPLOYING"
RUNNING = "TRAINING_JOB_RUNNING"
COMPLETED = "TRAINING_JOB_COMPLETED"
PREEMPTED = "TRAINING_JOB_PREEMPTED"
PENDING = "TRAINING_JOB_PENDING"
TIMINGS = JobTimings(created=1, deploying=2, running=12)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeTrainingAPI]:
    async with FakeTrainingAPI(
        clock=clock, timings=TIMINGS, validate_responses=True, seed=4
    ) as fake:
        yield fake


@pytest.fixture
async def http(api: FakeTrainingAPI) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Api-Key {api.api_key}"}
    async with aiohttp.ClientSession(api.url, headers=headers) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, **params: str) -> Any:
    async with http.get(path, params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def create(
    http: aiohttp.ClientSession, project_id: str, name: str, **job: Any
) -> dict[str, Any]:
    body = {"training_job": {"name": name, "image": {"base_image": "x"}, **job}}
    async with http.post(f"/v1/training_projects/{project_id}/jobs", json=body) as response:
        assert response.status == 200, await response.text()
        created: dict[str, Any] = (await response.json())["training_job"]
        return created


async def test_preemption_fault_ends_a_running_job_preempted(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("spot").id
    fault = api.inject("preemption", after=2, times=1)
    spot = await create(http, project_id, "spot-1")
    other = await create(http, project_id, "spot-2")
    assert fault.fired == 1
    assert api.requests_for(Route.CREATE_JOB)[0].fault == "preemption"
    clock.advance(4)  # RUNNING for 1 s
    assert api.job_status(spot["id"]) == RUNNING
    clock.advance(2)
    assert api.job_status(spot["id"]) == PREEMPTED
    assert api.job_status(other["id"]) == RUNNING
    assert api.status_history(spot["id"]) == [
        (T0, CREATED),
        (T0 + 1, DEPLOYING),
        (T0 + 3, RUNNING),
        (T0 + 5, PREEMPTED),
    ]
    last = api.logs(spot["id"])[-1]
    assert (last.level, last.timestamp_ns) == ("WARNING", int((T0 + 5) * 1e9))
    assert "preempted" in last.message
    clock.advance(20)
    assert api.job_status(other["id"]) == COMPLETED
    assert api.job_status(spot["id"]) == PREEMPTED


async def test_a_share_of_creates_is_preempted_deterministically(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("share").id
    fault = api.inject("preemption", probability=0.2, after=3)
    ids = [(await create(http, project_id, f"job-{i}"))["id"] for i in range(100)]
    clock.advance(60)
    preempted = [job_id for job_id in ids if api.job_status(job_id) == PREEMPTED]
    completed = [job_id for job_id in ids if api.job_status(job_id) == COMPLETED]
    assert len(preempted) == fault.fired
    assert len(preempted) + len(completed) == 100
    assert 5 <= fault.fired <= 40  # 20% of 100, seeded
    print(f"\npreemption: {fault.fired} of 100 jobs preempted at probability 0.2")


async def test_recreate_can_be_preempted_too(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("again").id
    job = await create(http, project_id, "again")
    api.inject("preemption", route=Route.RECREATE_JOB, after=0, times=1)
    async with http.post(
        f"/v1/training_projects/{project_id}/jobs/{job['id']}/recreate", json={}
    ) as response:
        assert response.status == 200
        again = (await response.json())["training_job"]
    clock.advance(3)
    assert api.job_status(again["id"]) == PREEMPTED
    assert api.job_status(job["id"]) == RUNNING


async def test_preempt_now(api: FakeTrainingAPI, clock: FakeClock) -> None:
    project_id = api.add_project("now").id
    job = api.add_job(project_id)
    clock.advance(5)
    api.preempt(job.id)
    assert api.job_status(job.id) == PREEMPTED
    assert api.status_history(job.id)[-1] == (T0 + 5, PREEMPTED)
    clock.advance(60)
    assert api.job_status(job.id) == PREEMPTED
    with pytest.raises(ValueError, match="already ended"):
        api.preempt(job.id)


async def test_running_jobs_save_the_checkpoints_their_log_announces(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("ckpt").id
    job = await create(http, project_id, "ckpt", compute={"node_count": 2})
    base = f"/v1/training_projects/{project_id}/jobs/{job['id']}"
    assert (await get(http, base + "/checkpoints"))["checkpoints"] == []
    clock.advance(3 + 11)  # 11 s of RUNNING: steps 1..11
    saved = [line for line in api.logs(job["id"]) if line.message.startswith("saved ")]
    assert [line.message for line in saved] == ["saved checkpoint-5", "saved checkpoint-10"]
    body = await get(http, base + "/checkpoints")
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == ["checkpoint-5", "checkpoint-10"]
    assert body["training_job"]["checkpoint_sync_status"] is not None
    files = await get(http, base + "/checkpoint_files", page_size="10")
    assert [(f["relative_file_name"], f["node_rank"]) for f in files["presigned_urls"]] == [
        ("rank-0/checkpoint-5/model.safetensors", 0),
        ("rank-1/checkpoint-5/model.safetensors", 1),
        ("rank-0/checkpoint-10/model.safetensors", 0),
        ("rank-1/checkpoint-10/model.safetensors", 1),
    ]
    clock.advance(60)  # finished: nothing more is saved
    body = await get(http, base + "/checkpoints")
    assert len(body["checkpoints"]) == 2
    assert api.job_status(job["id"]) == COMPLETED


async def test_a_preempted_job_keeps_what_it_saved(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("resume").id
    api.inject("preemption", after=7, times=1)
    job = await create(http, project_id, "resume")
    clock.advance(60)
    base = f"/v1/training_projects/{project_id}/jobs/{job['id']}"
    body = await get(http, base + "/checkpoints")
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == ["checkpoint-5"]
    assert body["training_job"]["current_status"] == PREEMPTED


async def test_seeded_checkpoints_stay_exactly_as_seeded(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = api.add_project("seeded").id
    job = api.add_job(project_id)
    api.set_checkpoints(job.id, [{"checkpoint_id": "mine"}])
    clock.advance(30)
    body = await get(http, f"/v1/training_projects/{project_id}/jobs/{job.id}/checkpoints")
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == ["mine"]


async def test_history_includes_the_wait_for_capacity(
    api: FakeTrainingAPI, clock: FakeClock
) -> None:
    api.capacity = 1
    project_id = api.add_project("queue").id
    first = api.add_job(project_id)
    second = api.add_job(project_id)
    clock.advance(100)
    assert api.status_history(second.id) == [
        (T0, PENDING),
        (T0 + 15, CREATED),
        (T0 + 16, DEPLOYING),
        (T0 + 18, RUNNING),
        (T0 + 30, COMPLETED),
    ]
    assert api.status_history(first.id)[-1] == (T0 + 15, COMPLETED)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"route": Route.LIST_JOBS}, ValueError),
        ({"after": -1}, ValueError),
        ({"delay": 1}, TypeError),
    ],
)
async def test_preemption_parameters_are_checked(
    api: FakeTrainingAPI, params: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        api.inject("preemption", **params)
    assert api.faults == []
