"""Deferred-commit faults: the server commits on its own schedule, whatever the client does.

Driven over real sockets with a raw aiohttp client, as a client with a short timeout
would meet them in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from baseten_training_async import AsyncTrainingClient, Image, TrainingJobSpec
from baseten_training_async.testing import (
    FakeClock,
    FakeTrainingAPI,
    Route,
    VirtualClock,
    fake_time,
)

T0 = 1_700_000_000.0
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)
SHORT = aiohttp.ClientTimeout(total=0.3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeTrainingAPI]:
    async with FakeTrainingAPI(clock=clock, validate_responses=True) as fake:
        yield fake


@pytest.fixture
async def http(api: FakeTrainingAPI) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Api-Key {api.api_key}"}
    async with aiohttp.ClientSession(api.url, headers=headers) as session:
        yield session


@pytest.fixture
def project(api: FakeTrainingAPI) -> str:
    return api.add_project("late").id


def create_body(name: str) -> dict[str, Any]:
    return {"training_job": {"name": name, "image": {"base_image": "hello-world"}}}


async def listed_names(http: aiohttp.ClientSession, project: str) -> list[str]:
    async with http.get(f"/v1/training_projects/{project}/jobs") as response:
        assert response.status == 200
        payload = await response.json()
    return [job["name"] for job in payload["training_jobs"]]


async def create_timing_out(http: aiohttp.ClientSession, project: str, name: str) -> float:
    """Post a create with a 0.3 s timeout; return when the client gave up (monotonic)."""
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"/v1/training_projects/{project}/jobs", json=create_body(name), timeout=SHORT
        ) as response:
            await response.read()
    return time.monotonic()


async def test_late_commit_after_the_client_timed_out(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    fault = api.inject("late_commit", route=Route.CREATE_JOB, delay=1.0, times=1)
    sent = time.monotonic()
    gave_up = await create_timing_out(http, project, "late-1")
    assert await listed_names(http, project) == []  # not yet: the commit is 1 s out
    assert api.pending_commits == 1
    await api.wait_for_commits(timeout=5)
    committed = time.monotonic()
    assert await listed_names(http, project) == ["late-1"]
    assert api.pending_commits == 0
    assert fault.fired == 1
    record = api.requests_for(Route.CREATE_JOB)[0]
    assert record.fault == "late_commit"
    assert record.committed_at is not None
    assert record.body == create_body("late-1")
    print(
        f"\nlate_commit: client gave up after {gave_up - sent:.2f}s, "
        f"job listed {committed - sent:.2f}s after the send"
    )


async def test_late_commit_answers_a_patient_client(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("late_commit", route=Route.CREATE_JOB, delay=0.2, times=1)
    started = time.monotonic()
    async with http.post(
        f"/v1/training_projects/{project}/jobs", json=create_body("patient")
    ) as response:
        assert response.status == 200
        job = (await response.json())["training_job"]
    assert time.monotonic() - started >= 0.2
    assert job["name"] == "patient"
    assert list(api.jobs) == [job["id"]]


async def test_commit_then_drop_commits_and_sends_nothing(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("commit_then_drop", route=Route.CREATE_JOB, delay=0.2, times=1)
    with pytest.raises(DROPPED):
        async with http.post(
            f"/v1/training_projects/{project}/jobs", json=create_body("dropped")
        ) as response:
            await response.read()
    assert await listed_names(http, project) == ["dropped"]
    record = api.requests_for(Route.CREATE_JOB)[0]
    assert (record.status, record.outcome) == (None, "committed_then_dropped")


async def test_commit_then_drop_of_a_client_already_gone(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("commit_then_drop", route=Route.CREATE_JOB, delay=1.0, times=1)
    await create_timing_out(http, project, "gone")
    assert await listed_names(http, project) == []
    await api.wait_for_commits(timeout=5)
    assert await listed_names(http, project) == ["gone"]


async def test_commit_then_stall_commits_on_schedule_while_the_client_waits_in_vain(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("commit_then_stall", route=Route.CREATE_JOB, delay=1.0, stall=30, times=1)
    sent = time.monotonic()
    gave_up = await create_timing_out(http, project, "stalled")
    assert await listed_names(http, project) == []
    await api.wait_for_commits(timeout=5)
    assert await listed_names(http, project) == ["stalled"]
    record = api.requests_for(Route.CREATE_JOB)[0]
    # The stall ends as soon as the client is gone: no 30 s handler left behind.
    for _ in range(100):
        if record.outcome == "committed_then_stalled":
            break
        await asyncio.sleep(0.05)
    assert (record.status, record.outcome) == (None, "committed_then_stalled")
    print(f"\ncommit_then_stall: client gave up after {gave_up - sent:.2f}s; job listed after 1s")


async def test_commit_then_stall_without_delay_commits_before_the_timeout(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("commit_then_stall", route=Route.CREATE_JOB, times=1)
    await create_timing_out(http, project, "committed-first")
    assert await listed_names(http, project) == ["committed-first"]


async def test_commit_then_garble_answers_2xx_the_client_cannot_read(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("commit_then_garble", route=Route.CREATE_JOB, times=1)
    async with http.post(
        f"/v1/training_projects/{project}/jobs", json=create_body("garbled")
    ) as response:
        assert response.status == 200
        assert await response.read() == b'{"training_job": {"id": 5}}'
    api.inject("commit_then_garble", route=Route.CREATE_JOB, status=201, body=b"<html>", times=1)
    async with http.post(
        f"/v1/training_projects/{project}/jobs", json=create_body("html")
    ) as response:
        assert response.status == 201
        raw = await response.read()
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)
    assert await listed_names(http, project) == ["garbled", "html"]
    outcomes = [record.outcome for record in api.requests_for(Route.CREATE_JOB)]
    assert outcomes == ["committed_then_garbled", "committed_then_garbled"]


async def test_delay_on_the_fake_clock_commits_when_the_clock_gets_there(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str, clock: FakeClock
) -> None:
    api.inject("late_commit", route=Route.CREATE_JOB, delay=20, clock="fake", times=1)
    await create_timing_out(http, project, "fake-late")
    await asyncio.sleep(0.1)  # real time passes; fake time does not
    assert await listed_names(http, project) == []
    clock.advance(19.5)
    assert await listed_names(http, project) == []
    clock.advance(0.5)
    assert await listed_names(http, project) == ["fake-late"]  # the request fires it
    record = api.requests_for(Route.CREATE_JOB)[0]
    assert record.committed_at == T0 + 20
    assert api.jobs[next(iter(api.jobs))].created_at == T0 + 20


async def test_fake_clock_commit_without_a_request(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str, clock: FakeClock
) -> None:
    api.inject("commit_then_drop", route=Route.CREATE_JOB, delay=5, clock="fake", times=1)
    await create_timing_out(http, project, "quiet")
    clock.advance(5)
    await api.wait_for_commits(timeout=5)
    assert [job.name for job in api.jobs.values()] == ["quiet"]


async def test_refused_requests_answer_at_once_and_commit_nothing(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    api.inject("late_commit", route=Route.CREATE_JOB, delay=30)
    async with http.post(
        f"/v1/training_projects/{project}/jobs", json={"training_job": {"image": 5}}
    ) as response:
        assert response.status == 400
    async with aiohttp.ClientSession(api.url) as anonymous:
        async with anonymous.post(
            f"/v1/training_projects/{project}/jobs", json=create_body("x")
        ) as response:
            assert response.status == 401
    assert api.pending_commits == 0
    assert api.jobs == {}


async def test_stop_and_reset_drop_commits_not_yet_made(clock: FakeClock) -> None:
    api = FakeTrainingAPI(clock=clock)
    await api.start()
    project = api.add_project("p").id
    headers = {"Authorization": f"Api-Key {api.api_key}"}
    async with aiohttp.ClientSession(api.url, headers=headers) as http:
        api.inject("late_commit", route=Route.CREATE_JOB, delay=60, times=1)
        await create_timing_out(http, project, "never")
        assert api.pending_commits == 1
        api.reset()
        await asyncio.sleep(0)
        assert api.pending_commits == 0
        project = api.add_project("p").id
        api.inject("late_commit", route=Route.CREATE_JOB, delay=60, clock="fake", times=1)
        await create_timing_out(http, project, "never-either")
        started = time.monotonic()
        await api.stop()
        assert time.monotonic() - started < 5
    assert api.pending_commits == 0
    assert api.jobs == {}


@pytest.mark.parametrize(
    ("kind", "params", "error"),
    [
        ("late_commit", {}, TypeError),
        ("late_commit", {"delay": -1}, ValueError),
        ("commit_then_drop", {"clock": "wall"}, ValueError),
        ("commit_then_drop", {"clock": object()}, ValueError),
        ("commit_then_stall", {"stall": -1}, ValueError),
        ("commit_then_garble", {"status": 500}, ValueError),
        ("commit_then_drop", {"stall": 1}, TypeError),
    ],
)
async def test_parameters_are_checked(
    api: FakeTrainingAPI, kind: Any, params: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        api.inject(kind, **params)
    assert api.faults == []


async def test_delay_on_a_client_clock_commits_when_that_clock_gets_there(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, project: str
) -> None:
    virtual = VirtualClock(start=100.0)
    api.inject("commit_then_stall", route=Route.CREATE_JOB, delay=20, clock=virtual, times=1)
    await create_timing_out(http, project, "virtual")
    assert await listed_names(http, project) == []
    virtual.advance(19)
    assert await listed_names(http, project) == []
    virtual.advance(1)
    assert await listed_names(http, project) == ["virtual"]


async def test_a_late_commit_on_the_testing_clock_is_adopted_by_the_sdk(
    api: FakeTrainingAPI, project: str
) -> None:
    """20 s late on the SDK's own virtual clock: reconciliation finds it, no resend."""
    with fake_time() as virtual:
        api.inject("late_commit", route=Route.CREATE_JOB, delay=20, clock=virtual, times=1)
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=0.3, commit_window=60
        ) as client:
            started = time.monotonic()
            job = await client.jobs.create(
                project, TrainingJobSpec(name="late-20", image=Image(base_image="x"))
            )
            elapsed = time.monotonic() - started
    assert job.name == "late-20"
    assert [j.name for j in api.jobs.values()] == ["late-20"]  # one job: adopted, not resent
    creates = api.requests_for(Route.CREATE_JOB)
    assert len(creates) == 1
    print(
        f"\nlate_commit 20 s on the virtual clock: {len(api.requests)} requests, "
        f"{len(api.requests_for(Route.LIST_JOBS))} listings, 0 resends, "
        f"{elapsed:.2f}s wall, virtual clock +{virtual.monotonic():.1f}s"
    )
