"""Exactly-once create and recreate when the response is lost."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import pytest

from baseten_training_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncTrainingClient,
    InternalServerError,
    TrainingJobSpec,
)
from baseten_training_async.testing import FakeTrainingAPI, Route


def _names(api: FakeTrainingAPI) -> Counter[str | None]:
    return Counter(job.spec.get("name") for job in api.jobs.values())


def _spec(name: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"image": {"base_image": "hello-world"}}
    if name is not None:
        spec["name"] = name
    return spec


async def test_a_lost_response_is_adopted_not_resent(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
    job = await client.jobs.create(project.id, _spec("once"))
    assert _names(api) == {"once": 1}
    assert api.jobs[job.id].spec["name"] == "once"
    assert client.stats().adopted == 1
    assert len(api.requests_for(Route.CREATE_JOB)) == 1


async def test_a_request_that_never_arrived_is_sent_again(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("drop_before", route=Route.CREATE_JOB, times=1)
    job = await client.jobs.create(project.id, _spec("again"))
    assert _names(api) == {"again": 1}
    assert job.name == "again"
    assert client.stats().resent == 1
    assert len(api.requests_for(Route.CREATE_JOB)) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_ambiguous_5xx_after_commit_is_adopted(
    api: FakeTrainingAPI, client: AsyncTrainingClient, status: int
) -> None:
    project = await client.projects.upsert("p")
    api.inject("status", route=Route.CREATE_JOB, status=status, commit=True, times=1)
    job = await client.jobs.create(project.id, _spec("five"))
    assert _names(api) == {"five": 1}
    assert job.id in api.jobs


@pytest.mark.parametrize("committed", [True, False])
async def test_a_timed_out_create_is_settled_by_name(api: FakeTrainingAPI, committed: bool) -> None:
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, timeout=0.3, commit_window=1.0
    ) as client:
        project = await client.projects.upsert("p")
        # commit=True: the server made the job and answered too late;
        # commit=False: it stalled before reading the request and made nothing.
        api.inject("latency", route=Route.CREATE_JOB, delay=0.5, commit=committed, times=1)
        job = await client.jobs.create(project.id, _spec("slow"))
        assert job.name == "slow"
        assert _names(api) == {"slow": 1}
        stats = client.stats()
        assert (stats.adopted, stats.resent) == ((1, 0) if committed else (0, 1))


async def test_an_unnamed_lost_create_is_reported_not_resent(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
    with pytest.raises(APIConnectionError) as info:
        await client.jobs.create(project.id, _spec())
    assert info.value.maybe_committed is True
    assert isinstance(info.value.spec, TrainingJobSpec)
    assert len(api.jobs) == 1  # it was created, and only once
    assert len(api.requests_for(Route.CREATE_JOB)) == 1


async def test_an_older_job_with_the_same_name_is_not_adopted(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    old = api.add_job(project.id, _spec("reused"))
    api.clock.advance(600)
    api.inject("drop_before", route=Route.CREATE_JOB, times=1)
    job = await client.jobs.create(project.id, _spec("reused"))
    assert job.id != old.id
    assert _names(api) == {"reused": 2}


async def test_when_the_lookup_fails_the_outcome_is_reported(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
    api.inject("status", route=Route.LIST_JOBS, status=403)
    with pytest.raises(APIConnectionError, match="did not settle") as info:
        await client.jobs.create(project.id, _spec("unknown"))
    assert info.value.maybe_committed is True
    assert _names(api) == {"unknown": 1}


async def test_a_lost_recreate_is_adopted_by_the_original_name(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    original = await client.jobs.create(project.id, _spec("base"))
    api.clock.advance(60)
    api.inject("drop_after_commit", route=Route.RECREATE_JOB, times=1)
    again = await client.jobs.recreate(project.id, original.id)
    assert again.id != original.id
    assert again.name == "base"
    assert _names(api) == {"base": 2}
    assert len(api.requests_for(Route.RECREATE_JOB)) == 1


async def test_a_lost_recreate_of_an_unnamed_job_is_reported(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    original = await client.jobs.create(project.id, _spec())
    api.inject("drop_after_commit", route=Route.RECREATE_JOB, times=1)
    with pytest.raises(APIConnectionError) as info:
        await client.jobs.recreate(project.id, original.id)
    assert info.value.maybe_committed is True
    assert len(api.jobs) == 2


async def test_creates_follow_with_options(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("status", route=Route.CREATE_JOB, status=503)
    with pytest.raises(InternalServerError):
        await client.with_options(max_retries=0).jobs.create(project.id, _spec("opt"))
    assert len(api.requests_for(Route.CREATE_JOB)) == 1


async def test_a_create_that_never_lands_stops_after_three_rounds(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("p")
    api.inject("drop_before", route=Route.CREATE_JOB)
    with pytest.raises(APIConnectionError, match="3 sends") as info:
        await client.with_options(max_retries=0).jobs.create(project.id, _spec("never"))
    assert info.value.maybe_committed is False
    assert len(api.requests_for(Route.CREATE_JOB)) == 3
    assert api.jobs == {}


@pytest.mark.parametrize("fault", ["malformed_json", "truncated_body"])
async def test_a_success_whose_body_is_lost_is_adopted(
    api: FakeTrainingAPI,
    client: AsyncTrainingClient,
    fault: Literal["malformed_json", "truncated_body"],
) -> None:
    project = await client.projects.upsert("p")
    api.inject(fault, route=Route.CREATE_JOB, times=1)
    job = await client.jobs.create(project.id, _spec("garbled"))
    assert job.name == "garbled"
    assert _names(api) == {"garbled": 1}
    api.inject(fault, route=Route.CREATE_JOB, times=1)
    # Unnamed, so it cannot be looked up; it is reported as made, never resent.
    with pytest.raises(
        APIConnectionError if fault == "truncated_body" else APIResponseValidationError
    ) as info:
        await client.jobs.create(project.id, _spec())
    error = info.value
    if isinstance(error, APIResponseValidationError):
        assert error.committed is True
    else:
        assert isinstance(error, APIConnectionError)
        assert error.maybe_committed is True
    assert len(api.jobs) == 2
    assert len(api.requests_for(Route.CREATE_JOB)) == 2
