"""Temporal activities under ``temporalio.testing.ActivityEnvironment`` against the fake."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from baseten_training_async import AsyncTrainingClient, JobStatus, TrainingJob
from baseten_training_async.contrib.temporal import (
    API_RATE_LIMIT,
    CreateJobInput,
    JobResult,
    StopJobInput,
    TrainingActivities,
    WaitJobInput,
)
from baseten_training_async.testing import FakeTrainingAPI, Route

from .conftest import SPEC


def _env(*, workflow_id: str = "wf-42", activity_id: str = "1", **info: Any) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(), workflow_id=workflow_id, activity_id=activity_id, **info
    )
    return env


def _heartbeats(env: ActivityEnvironment) -> list[dict[str, Any]]:
    beats: list[dict[str, Any]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    return beats


async def _project(client: AsyncTrainingClient, name: str = "temporal") -> str:
    return (await client.projects.upsert(name)).id


# --------------------------------------------------------------------------- create


async def test_create_run_twice_with_the_same_activity_info_makes_one_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    request = CreateJobInput(project_id=await _project(client), spec=SPEC)
    first = await _env().run(activities.create_job, request)
    retried = await _env(attempt=2).run(activities.create_job, request)
    assert retried.job_id == first.job_id
    assert first.name == "wf-42.1"
    assert len(api.jobs) == 1
    assert len(api.requests_for(Route.CREATE_JOB)) == 1
    assert isinstance(first.training_job(), TrainingJob)
    assert first.training_job().id == first.job_id
    other = await _env(activity_id="2").run(activities.create_job, request)
    assert other.job_id != first.job_id
    assert len(api.jobs) == 2


async def test_a_retry_after_the_worker_lost_the_response_adopts_the_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    request = CreateJobInput(project_id=await _project(client), spec=SPEC)
    # The server commits the job, then answers late; the first attempt dies meanwhile.
    api.inject("latency", route=Route.CREATE_JOB, delay=0.3, commit=True, times=1)
    first_env = _env()
    first = asyncio.create_task(first_env.run(activities.create_job, request))
    for _ in range(200):
        if api.jobs:
            break
        await asyncio.sleep(0.01)
    assert len(api.jobs) == 1
    first_env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    retried = await _env(attempt=2).run(activities.create_job, request)
    assert len(api.jobs) == 1
    assert retried.job_id == next(iter(api.jobs))


async def test_a_given_name_wins_over_the_ids(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    named = await _env().run(activities.create_job, CreateJobInput(pid, SPEC, name="explicit"))
    in_spec = await _env(activity_id="2").run(
        activities.create_job, CreateJobInput(pid, {**SPEC, "name": "from-spec"})
    )
    assert (named.name, in_spec.name) == ("explicit", "from-spec")
    assert sorted(job.name for job in api.jobs.values()) == ["explicit", "from-spec"]


async def test_an_invalid_spec_is_not_retried(client: AsyncTrainingClient) -> None:
    activities = TrainingActivities(client)
    bad = CreateJobInput(await _project(client), {**SPEC, "compute": {"node_count": 0}})
    with pytest.raises(ApplicationError) as failed:
        await _env().run(activities.create_job, bad)
    assert failed.value.non_retryable
    assert failed.value.type == "InvalidInputError"
    assert "node_count" in str(failed.value)


# --------------------------------------------------------------------------- wait


async def test_wait_heartbeats_carry_the_status(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    created = await _env().run(activities.create_job, CreateJobInput(await _project(client), SPEC))
    env = _env(activity_id="2")
    beats = _heartbeats(env)
    done = await env.run(
        activities.wait_job,
        WaitJobInput(created.project_id, created.job_id, poll_interval=0.01),
    )
    assert done.status == JobStatus.COMPLETED
    assert beats, "the wait heartbeated"
    assert all(beat["job_id"] == created.job_id for beat in beats)
    statuses = [beat["status"] for beat in beats]
    assert JobStatus.RUNNING in statuses
    assert statuses[-1] == JobStatus.COMPLETED


async def test_wait_keeps_heartbeating_between_status_changes(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    created = await _env().run(activities.create_job, CreateJobInput(pid, SPEC))
    api.force_status(created.job_id, JobStatus.RUNNING)
    env = _env(activity_id="2")
    beats = _heartbeats(env)
    task = asyncio.create_task(
        env.run(
            activities.wait_job,
            WaitJobInput(pid, created.job_id, poll_interval=0.01, heartbeat_interval=0.01),
        )
    )
    await asyncio.sleep(0.2)
    api.force_status(created.job_id, JobStatus.COMPLETED)
    await asyncio.wait_for(task, 5)
    running = [beat for beat in beats if beat["status"] == JobStatus.RUNNING]
    assert len(running) >= 5  # one status, many heartbeats


async def test_a_failed_job_fails_the_wait_with_its_error(client: AsyncTrainingClient) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    created = await _env().run(activities.create_job, CreateJobInput(pid, SPEC, name="will-fail"))
    with pytest.raises(ApplicationError) as failed:
        await _env(activity_id="2").run(
            activities.wait_job, WaitJobInput(pid, created.job_id, poll_interval=0.01)
        )
    assert failed.value.type == "TrainingJobFailed"
    assert failed.value.non_retryable
    assert JobStatus.FAILED in str(failed.value)
    (result,) = failed.value.details
    assert isinstance(result, JobResult)
    assert result.status == JobStatus.FAILED
    tolerant = await _env(activity_id="3").run(
        activities.wait_job,
        WaitJobInput(pid, created.job_id, poll_interval=0.01, fail_on_error=False),
    )
    assert tolerant.status == JobStatus.FAILED


async def test_a_retried_wait_resumes_from_its_heartbeat(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    created = await _env().run(activities.create_job, CreateJobInput(pid, SPEC))
    api.force_status(created.job_id, JobStatus.RUNNING)
    # The first attempt heartbeated a deadline that has since passed: the retry keeps it.
    before = {"job_id": created.job_id, "status": JobStatus.RUNNING, "deadline": time.time() - 1}
    env = _env(activity_id="2", attempt=2, heartbeat_details=[before])
    beats = _heartbeats(env)
    request = WaitJobInput(pid, created.job_id, poll_interval=0.01, timeout=3600)
    polls_before = len(api.requests_for(Route.GET_JOB))
    with pytest.raises(ApplicationError) as timed_out:
        # A restarted hour-long timeout would hang here; the resumed deadline ends it at once.
        await asyncio.wait_for(env.run(activities.wait_job, request), 10)
    assert timed_out.value.type == "WaitTimeoutError"
    assert timed_out.value.non_retryable
    assert beats[0] == before  # resumed: same job, status and deadline
    assert len(api.requests_for(Route.GET_JOB)) - polls_before <= 2  # gave up at once
    # Progress heartbeated for another job is not taken over.
    stranger = {"job_id": "other", "status": JobStatus.RUNNING, "deadline": time.time() - 1}
    api.force_status(created.job_id, JobStatus.COMPLETED)
    env = _env(activity_id="2", attempt=3, heartbeat_details=[stranger])
    done = await env.run(activities.wait_job, request)
    assert done.status == JobStatus.COMPLETED


@pytest.mark.parametrize("stop_on_cancel", [True, False])
async def test_a_cancelled_wait_stops_the_job_when_asked(
    api: FakeTrainingAPI, client: AsyncTrainingClient, stop_on_cancel: bool
) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    created = await _env().run(activities.create_job, CreateJobInput(pid, SPEC))
    api.force_status(created.job_id, JobStatus.RUNNING)
    env = _env(activity_id="2")
    beats = _heartbeats(env)
    request = WaitJobInput(pid, created.job_id, poll_interval=0.01, stop_on_cancel=stop_on_cancel)
    task = asyncio.create_task(env.run(activities.wait_job, request))
    for _ in range(200):
        if any(beat["status"] == JobStatus.RUNNING for beat in beats):
            break
        await asyncio.sleep(0.01)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stops = api.requests_for(Route.STOP_JOB)
    if stop_on_cancel:
        assert len(stops) == 1
        assert api.jobs[created.job_id].stopped_at is not None
    else:
        assert stops == []
        assert api.jobs[created.job_id].stopped_at is None


# --------------------------------------------------------------------------- stop


async def test_stop_is_idempotent(api: FakeTrainingAPI, client: AsyncTrainingClient) -> None:
    activities = TrainingActivities(client)
    pid = await _project(client)
    created = await _env().run(activities.create_job, CreateJobInput(pid, SPEC))
    stopped = await _env(activity_id="2").run(
        activities.stop_job, StopJobInput(pid, created.job_id)
    )
    assert stopped.status == JobStatus.STOPPED
    again = await _env(activity_id="2", attempt=2).run(
        activities.stop_job, StopJobInput(pid, created.job_id)
    )
    assert again.status == JobStatus.STOPPED
    assert len(api.requests_for(Route.STOP_JOB)) == 1
    with pytest.raises(ApplicationError) as missing:
        await _env().run(activities.stop_job, StopJobInput(pid, "no-such-job"))
    assert missing.value.type == "NotFoundError"
    assert missing.value.non_retryable


def test_worker_registration_names_and_rate_limit(client: AsyncTrainingClient) -> None:
    from temporalio.activity import _Definition

    registered = TrainingActivities(client).all()
    names = sorted(_Definition.must_from_callable(fn).name for fn in registered)
    assert names == [
        "baseten.create_training_job",
        "baseten.stop_training_job",
        "baseten.wait_training_job",
    ]
    assert API_RATE_LIMIT == 100.0
