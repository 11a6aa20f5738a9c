"""The fake's preemption fault, checkpoints written while running, and status history."""

from __future__ import annotations

import pytest

from baseten_training_async import AsyncTrainingClient, JobStatus
from baseten_training_async.testing import FakeTrainingAPI, JobTimings, Route

IMAGE = {"base_image": "hello-world"}


async def test_preempted_jobs_end_preempted_with_the_checkpoints_they_wrote() -> None:
    timings = JobTimings(created=1.0, deploying=2.0, running=30.0)
    async with FakeTrainingAPI(seed=1, timings=timings) as api:
        fault = api.inject("preempt", times=1, after=12.0)
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
            project = await client.projects.upsert("p")
            spot = await client.jobs.create(project.id, {"name": "spot", "image": IMAGE})
            steady = await client.jobs.create(project.id, {"name": "steady", "image": IMAGE})
            assert fault.fired == 1
            assert not fault.active
            api.clock.advance(3 + 7)  # 7 s into RUNNING
            assert [
                c.checkpoint_id for c in await client.jobs.checkpoints(project.id, spot.id)
            ] == ["checkpoint-5"]
            api.clock.advance(100)
            spot = await client.jobs.retrieve(project.id, spot.id)
            steady = await client.jobs.retrieve(project.id, steady.id)
            spot_checkpoints = await client.jobs.checkpoints(project.id, spot.id)
            steady_checkpoints = await client.jobs.checkpoints(project.id, steady.id)
            logs = await client.jobs.logs(project.id, spot.id)
        assert spot.current_status == JobStatus.PREEMPTED
        assert steady.current_status == JobStatus.COMPLETED
        assert [c.checkpoint_id for c in spot_checkpoints] == ["checkpoint-5", "checkpoint-10"]
        assert [c.checkpoint_id for c in steady_checkpoints] == [
            f"checkpoint-{s}" for s in (5, 10, 15, 20, 25)
        ]
        saved = [line.message for line in logs if line.message.startswith("saved checkpoint")]
        assert saved == ["saved checkpoint-5", "saved checkpoint-10"]
        assert logs[-1].message.startswith("Preempted")
        created = api.jobs[spot.id].created_at
        assert api.status_history(spot.id) == [
            (created, JobStatus.CREATED),
            (created + 1, JobStatus.DEPLOYING),
            (created + 3, JobStatus.RUNNING),
            (created + 15, JobStatus.PREEMPTED),
        ]


async def test_history_of_queued_stopped_and_forced_jobs() -> None:
    async with FakeTrainingAPI(seed=2, capacity=1, log_every=None) as api:
        project = api.add_project("p")
        first = api.add_job(project.id, {"name": "first", "image": IMAGE})
        second = api.add_job(project.id, {"name": "second", "image": IMAGE})
        start = api.clock.now()
        api.clock.advance(5)
        api.force_status(first.id, "TRAINING_JOB_SOMETHING_NEW")
        api.clock.advance(2)
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
            await client.jobs.stop(project.id, second.id)
        api.clock.advance(1)
        assert api.status_history(first.id) == [
            (start, JobStatus.CREATED),
            (start + 1, JobStatus.DEPLOYING),
            (start + 3, JobStatus.RUNNING),
            (start + 5, "TRAINING_JOB_SOMETHING_NEW"),
        ]
        assert api.status_history(second.id) == [
            (start, JobStatus.PENDING),
            (start + 5, JobStatus.CREATED),
            (start + 6, JobStatus.DEPLOYING),
            (start + 7, JobStatus.STOPPED),
        ]
        api.set_checkpoints(first.id, 2)
        assert len(api.jobs[first.id].checkpoints) == 2


def test_the_preempt_fault_is_checked() -> None:
    api = FakeTrainingAPI()
    with pytest.raises(ValueError, match="after"):
        api.inject("preempt", after=-1)
    with pytest.raises(TypeError, match="unexpected"):
        api.inject("preempt", delay=1)
    fault = api.inject("preempt")
    assert fault.routes == frozenset({Route.CREATE_JOB, Route.RECREATE_JOB})
