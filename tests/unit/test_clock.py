"""One clock for every wait: the testing switch `fake_time` and an injected `VirtualClock`."""

from __future__ import annotations

import asyncio
import time

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    Clock,
    HTTPRequest,
    HTTPResponse,
    WaitTimeoutError,
)
from baseten_training_async.testing import MockTransport, VirtualClock, fake_time, json_response
from tests.conftest import BASE, KEY, job_json


def _running_job() -> HTTPResponse:
    return json_response(200, {"training_job": job_json(status="TRAINING_JOB_RUNNING")})


def _running(request: HTTPRequest) -> HTTPResponse:
    if request.url.endswith("/jobs"):  # waits list the project: one request serves them all
        return json_response(200, {"training_jobs": [job_json(status="TRAINING_JOB_RUNNING")]})
    return _running_job()


def _client(transport: MockTransport, clock: Clock | None = None) -> AsyncTrainingClient:
    return AsyncTrainingClient(KEY, base_url=BASE, transport=transport, clock=clock)


def _is_real_time(clock: Clock) -> bool:
    return abs(clock.monotonic() - time.monotonic()) < 5.0


async def test_fake_time_makes_the_default_clock_virtual_and_restores_it() -> None:
    client = _client(MockTransport(_running))
    assert isinstance(client.clock, Clock)
    assert _is_real_time(client.clock)
    with fake_time(start=1e9) as clock:
        assert isinstance(clock, VirtualClock)
        assert client.clock.monotonic() == 1e9
        started = time.perf_counter()
        await client.clock.sleep(3600)
        assert time.perf_counter() - started < 5.0  # an hour of fake time, no real wait
        assert clock.sleeps == [3600]
        assert client.clock.monotonic() == 1e9 + 3600
    assert _is_real_time(client.clock)
    started = time.perf_counter()
    await client.clock.sleep(0.02)
    assert time.perf_counter() - started >= 0.01  # real sleeping again
    assert clock.sleeps == [3600]  # the switched-off clock saw nothing more
    await client.aclose()


async def test_fake_time_restores_after_an_error_and_nests() -> None:
    client = _client(MockTransport(_running))
    clocks: list[VirtualClock] = []

    async def nested() -> None:
        with fake_time(start=1e9) as outer:
            clocks.append(outer)
            with fake_time(start=2e9) as inner:
                clocks.append(inner)
                await client.clock.sleep(1)
                assert client.clock.monotonic() == 2e9 + 1
            await client.clock.sleep(2)
            assert client.clock.monotonic() == 1e9 + 2
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await nested()
    outer, inner = clocks
    assert inner.sleeps == [1]
    assert outer.sleeps == [2]
    assert _is_real_time(client.clock)
    await client.aclose()


async def test_a_client_built_before_the_switch_honours_it() -> None:
    responses = [json_response(503, {"message": "busy"}), _running_job()]
    transport = MockTransport(lambda request: responses.pop(0))
    client = _client(transport)  # built with the default clock, before the switch
    with fake_time() as clock:
        started = time.perf_counter()
        job = await client.jobs.retrieve("proj1", "job1")
        elapsed = time.perf_counter() - started
    assert job.current_status == "TRAINING_JOB_RUNNING"
    assert len(transport.requests) == 2
    assert len(clock.sleeps) == 1  # the retry's backoff went through the switch
    assert 0.0 <= clock.sleeps[0] <= client.retry_policy.initial_backoff
    assert elapsed < 5.0
    await client.aclose()


async def test_a_client_with_its_own_clock_ignores_the_switch() -> None:
    own = VirtualClock()
    responses = [json_response(503, {"message": "busy"}), _running_job()]
    client = _client(MockTransport(lambda request: responses.pop(0)), clock=own)
    assert client.clock is own
    with fake_time() as switched:
        await client.jobs.retrieve("proj1", "job1")
    assert len(own.sleeps) == 1
    assert switched.sleeps == []
    await client.aclose()


async def test_wait_runs_its_whole_schedule_on_fake_time() -> None:
    transport = MockTransport(_running)
    statuses: list[str] = []
    async with _client(transport) as client:
        with fake_time() as clock:
            started = time.perf_counter()
            with pytest.raises(WaitTimeoutError) as info:
                await client.jobs.wait(
                    "proj1",
                    "job1",
                    timeout=1800,
                    poll_interval=10,
                    on_status_change=lambda job: statuses.append(job.current_status),
                )
            elapsed = time.perf_counter() - started
    gets = len(transport.requests)
    print(f"wait(timeout=1800, poll_interval=10): {gets} listings in {elapsed:.3f}s of wall time")
    assert gets in (180, 181)
    assert all(r.method == "GET" and r.url.endswith("/jobs") for r in transport.requests)
    assert elapsed < 5.0  # a bound against hot loops and real sleeps, not a benchmark
    assert sum(clock.sleeps) == pytest.approx(1800)
    assert max(clock.sleeps) == 10
    assert clock.monotonic() == pytest.approx(1800)
    assert info.value.job.current_status == "TRAINING_JOB_RUNNING"
    assert isinstance(info.value, TimeoutError)
    assert statuses == ["TRAINING_JOB_RUNNING"]  # reported once, not on every poll


async def test_wait_returns_when_the_job_finishes_on_fake_time() -> None:
    polls = {"n": 0}

    def finishing(request: HTTPRequest) -> HTTPResponse:
        polls["n"] += 1
        status = "TRAINING_JOB_COMPLETED" if polls["n"] == 4 else "TRAINING_JOB_RUNNING"
        return json_response(200, {"training_jobs": [job_json(status=status)]})

    async with _client(MockTransport(finishing)) as client:
        with fake_time() as clock:
            job = await client.jobs.wait("proj1", "job1", timeout=1800, poll_interval=10)
    assert job.current_status == "TRAINING_JOB_COMPLETED"
    assert clock.sleeps == [10, 10, 10]


async def test_virtual_sleeps_let_other_tasks_run() -> None:
    clock = VirtualClock()
    order: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append(name)

    await asyncio.gather(sleeper("a", 100), sleeper("b", 1))
    assert sorted(order) == ["a", "b"]
    assert clock.monotonic() == 101
    clock.advance(-5)  # never backwards
    clock.advance(4)
    assert clock.monotonic() == 105
    assert "105" in repr(clock)
