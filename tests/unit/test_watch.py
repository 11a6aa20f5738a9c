"""The shared status poller in memory: intervals, lookups, errors, limits, validation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    BadRequestError,
    ClientClosedError,
    HTTPRequest,
    HTTPResponse,
    InvalidInputError,
    JobEvent,
    JobStatus,
    NotFoundError,
    PollSettings,
    WaitTimeoutError,
)
from baseten_training_async.testing import MockTransport, VirtualClock, json_response
from tests.conftest import BASE, KEY, job_json

LIST = "/v1/training_projects/proj1/jobs"


class Server:
    """Jobs whose statuses a test sets; answers listings, GETs and stops."""

    def __init__(self, **statuses: str) -> None:
        self.statuses = dict(statuses)
        self.listed: set[str] | None = None  # None: every job is listed
        self.requests: list[tuple[str, str]] = []
        self.fail_listing: HTTPResponse | None = None
        self.stop_status = 200

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        path = request.url.removeprefix(BASE)
        self.requests.append((request.method, path))
        if request.method == "GET" and path == LIST:
            if self.fail_listing is not None:
                return self.fail_listing
            ids = [j for j in self.statuses if self.listed is None or j in self.listed]
            return json_response(200, {"training_jobs": [self.job(j) for j in ids]})
        job_id = path.removeprefix(LIST + "/").split("/")[0]
        if job_id not in self.statuses:
            return json_response(404, {"message": "no such job"})
        if request.method == "POST" and path.endswith("/stop"):
            if self.stop_status != 200:
                return json_response(self.stop_status, {"message": "not running"})
            self.statuses[job_id] = JobStatus.STOPPED
        return json_response(200, {"training_job": self.job(job_id)})

    def job(self, job_id: str) -> dict[str, Any]:
        return job_json(job_id, status=self.statuses[job_id], name=job_id)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))


def _client(server: Server, clock: VirtualClock, **options: Any) -> AsyncTrainingClient:
    return AsyncTrainingClient(
        KEY, base_url=BASE, transport=MockTransport(server), clock=clock, **options
    )


async def _until(condition: Callable[[], bool], limit: int = 10_000) -> None:
    """Let other tasks run until ``condition`` holds (a bounded number of turns)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_the_interval_backs_off_while_quiet_and_resets_on_a_change() -> None:
    server = Server(job1=JobStatus.RUNNING, job2=JobStatus.RUNNING)
    clock = VirtualClock()
    settings = PollSettings(min_interval=1, max_interval=8, backoff=2)
    async with _client(server, clock, poll=settings) as client:
        events: list[JobEvent] = []
        task = asyncio.ensure_future(
            client.jobs.wait_many("proj1", ["job1", "job2"], on_event=events.append)
        )
        await _until(lambda: len(clock.sleeps) >= 6)
        server.statuses["job2"] = JobStatus.COMPLETED
        await _until(lambda: len(events) >= 3)
        server.statuses["job1"] = JobStatus.COMPLETED
        done, pending = await asyncio.wait_for(task, 5)
    assert pending == {}
    assert [job.current_status for job in done.values()] == [JobStatus.COMPLETED] * 2
    # 1 s after the first sight, doubling to the cap; back to 1 s after a change.
    assert clock.sleeps[:5] == [1, 2, 4, 8, 8]
    assert 1 in clock.sleeps[5:]
    assert [e.previous for e in events] == [None, None, JobStatus.RUNNING, JobStatus.RUNNING]


async def test_a_starting_job_is_polled_at_the_transition_interval() -> None:
    server = Server(job1=JobStatus.DEPLOYING)
    clock = VirtualClock()
    settings = PollSettings(min_interval=1, max_interval=30, transition_interval=3)
    async with _client(server, clock, poll=settings) as client:
        task = asyncio.ensure_future(client.jobs.wait("proj1", "job1"))
        await _until(lambda: len(clock.sleeps) >= 5)
        server.statuses["job1"] = JobStatus.FAILED
        job = await asyncio.wait_for(task, 5)
    assert job.current_status == JobStatus.FAILED
    assert max(clock.sleeps) == 3


async def test_a_job_missing_from_the_listing_is_looked_up_and_a_deleted_one_raises() -> None:
    server = Server(job1=JobStatus.COMPLETED, job2=JobStatus.COMPLETED)
    server.listed = {"job2"}  # a listing that lags a fresh create
    clock = VirtualClock()
    async with _client(server, clock) as client:
        job = await client.jobs.wait("proj1", "job1")
        assert job.id == "job1"
        assert client.stats().status_lookups == 1
        assert server.count("GET", LIST + "/job1") == 1
        with pytest.raises(NotFoundError):
            await client.jobs.wait("proj1", "gone")


async def test_a_failed_listing_reaches_every_waiter() -> None:
    server = Server(job1=JobStatus.RUNNING, job2=JobStatus.RUNNING)
    server.fail_listing = json_response(400, {"message": "bad project"})
    clock = VirtualClock()
    async with _client(server, clock) as client:
        results = await asyncio.gather(
            client.jobs.wait("proj1", "job1"),
            client.jobs.wait("proj1", "job2"),
            return_exceptions=True,
        )
    assert [type(r) for r in results] == [BadRequestError, BadRequestError]


async def test_closing_the_client_ends_its_waits() -> None:
    server = Server(job1=JobStatus.RUNNING)
    clock = VirtualClock()
    client = _client(server, clock)
    task = asyncio.ensure_future(client.jobs.wait("proj1", "job1"))
    await _until(lambda: bool(clock.sleeps))
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(task, 5)
    with pytest.raises(ClientClosedError):
        await client.jobs.wait("proj1", "job1")


async def test_views_share_the_poller() -> None:
    server = Server(**{f"job{i}": JobStatus.RUNNING for i in range(10)})
    clock = VirtualClock()
    async with _client(server, clock) as client:
        fast = client.with_options(timeout=5)
        tasks = [
            asyncio.ensure_future((fast if i % 2 else client).jobs.wait("proj1", f"job{i}"))
            for i in range(10)
        ]
        await _until(lambda: len(clock.sleeps) >= 3)
        for i in range(10):
            server.statuses[f"job{i}"] = JobStatus.COMPLETED
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert client.stats().status_listings == fast.stats().status_listings
    listings = server.count("GET", LIST)
    assert listings == client.stats().status_listings
    assert listings <= 5
    assert server.count("GET", LIST + "/job1") == 0


async def test_wait_many_returns_at_its_timeout_and_stops_when_asked() -> None:
    server = Server(a=JobStatus.COMPLETED, b=JobStatus.RUNNING, c=JobStatus.PENDING)
    clock = VirtualClock()
    async with _client(server, clock) as client:
        done, pending = await client.jobs.wait_many("proj1", ["a", "b", "c"], timeout=60)
        assert list(done) == ["a"]
        assert list(pending) == ["b", "c"]
        assert clock.monotonic() == pytest.approx(60)
        first = await client.jobs.wait_many("proj1", ["b", "a"], return_when="FIRST_COMPLETED")
        assert list(first.done) == ["a"]
        done, pending = await client.jobs.wait_many(
            "proj1", ["b", "c"], timeout=30, on_timeout="stop"
        )
        assert pending == {}
        assert [job.stopped_for for job in done.values()] == ["timeout", "timeout"]
        assert server.statuses == {"a": "TRAINING_JOB_COMPLETED", "b": "TRAINING_JOB_STOPPED",
                                   "c": "TRAINING_JOB_STOPPED"}  # fmt: skip


async def test_a_stop_that_arrives_too_late_reports_the_job_as_it_is() -> None:
    server = Server(job1=JobStatus.RUNNING)
    server.stop_status = 400
    clock = VirtualClock()
    async with _client(server, clock) as client:
        job = await client.jobs.wait("proj1", "job1", timeout=10, on_timeout="stop")
    assert job.current_status == JobStatus.RUNNING  # what a GET said after the refused stop
    assert job.stopped_for == "timeout"


async def test_a_wait_that_times_out_reports_its_reason() -> None:
    server = Server(job1=JobStatus.PENDING)
    clock = VirtualClock()
    async with _client(server, clock) as client:
        with pytest.raises(WaitTimeoutError, match="max_pending=30s") as info:
            await client.jobs.wait("proj1", "job1", max_pending=30, timeout=100)
    assert info.value.reason == "max_pending"
    assert info.value.job.current_status == JobStatus.PENDING
    assert 30 <= clock.monotonic() < 32


async def test_watching_a_whole_project_sees_new_jobs_until_the_caller_stops() -> None:
    server = Server(old=JobStatus.COMPLETED)
    clock = VirtualClock()
    async with _client(server, clock) as client:
        events: list[JobEvent] = []
        async for event in client.jobs.watch("proj1"):
            events.append(event)
            if event.job.id == "old":
                server.statuses["new"] = JobStatus.RUNNING
            elif event.status == JobStatus.RUNNING:
                server.statuses["new"] = JobStatus.COMPLETED
            else:
                break
        listings = client.stats().status_listings
        for _ in range(20):
            await asyncio.sleep(0)
        assert client.stats().status_listings == listings  # nobody listens: no more polls
    assert [(e.job.id, e.previous, e.status) for e in events] == [
        ("old", None, JobStatus.COMPLETED),
        ("new", None, JobStatus.RUNNING),
        ("new", JobStatus.RUNNING, JobStatus.COMPLETED),
    ]
    assert events[0].seen_at <= events[1].seen_at <= events[2].seen_at


async def test_watching_no_jobs_ends_at_once() -> None:
    clock = VirtualClock()
    async with _client(Server(), clock) as client:
        assert [e async for e in client.jobs.watch("proj1", job_ids=[])] == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"on_timeout": "return"}, "on_timeout"),
        ({"log_tail": -1}, "log_tail"),
        ({"log_tail": True}, "log_tail"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_running": -1}, "max_running"),
    ],
)
async def test_wait_refuses_bad_arguments_before_any_request(
    options: dict[str, Any], field: str
) -> None:
    server = Server(job1=JobStatus.RUNNING)
    async with _client(server, VirtualClock()) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.jobs.wait("proj1", "job1", **options)
    assert info.value.field == field
    assert server.requests == []


async def test_wait_many_watch_and_supervise_refuse_bad_arguments() -> None:
    server = Server(job1=JobStatus.RUNNING)
    async with _client(server, VirtualClock()) as client:
        jobs = client.jobs
        with pytest.raises(InvalidInputError, match="job_ids"):
            await jobs.wait_many("proj1", "job1")
        with pytest.raises(InvalidInputError, match="return_when"):
            await jobs.wait_many("proj1", ["job1"], return_when="SOMETIME")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="max_pending"):
            await jobs.wait_many("proj1", ["job1"], max_pending=5)
        with pytest.raises(InvalidInputError, match="job_ids"):
            jobs.watch("proj1", job_ids="job1")
        with pytest.raises(InvalidInputError, match="job_id"):
            jobs.watch("proj1", job_ids=[""])
        image = {"base_image": "x"}
        with pytest.raises(InvalidInputError, match=r"specs\[1\].name"):
            await jobs.supervise("proj1", [{"name": "a", "image": image}, {"image": image}])
        with pytest.raises(InvalidInputError, match="unique"):
            await jobs.supervise("proj1", [{"name": "a", "image": image}] * 2)
        with pytest.raises(InvalidInputError, match="max_attempts"):
            await jobs.supervise("proj1", [], max_attempts=0)
        with pytest.raises(InvalidInputError, match="relaunch_on"):
            await jobs.supervise("proj1", [], relaunch_on="TRAINING_JOB_FAILED")
        with pytest.raises(InvalidInputError, match="concurrency"):
            await jobs.supervise("proj1", [], concurrency=0)
    assert server.requests == []


@pytest.mark.parametrize(
    "settings",
    [
        {"min_interval": 0},
        {"max_interval": float("inf")},
        {"min_interval": 10, "max_interval": 5},
        {"backoff": 0.5},
        {"backoff": True},
        {"transition_interval": -1},
    ],
)
def test_poll_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="poll"):
        PollSettings(**settings)


def test_the_client_takes_poll_settings_only() -> None:
    with pytest.raises(InvalidInputError, match="poll"):
        AsyncTrainingClient(KEY, base_url=BASE, poll={"min_interval": 1})  # type: ignore[arg-type]
    client = AsyncTrainingClient(KEY, base_url=BASE, transport=MockTransport(Server()))
    assert client.poll_settings == PollSettings()


async def test_a_waiter_with_its_own_interval_sets_the_pace_for_its_project() -> None:
    server = Server(job1=JobStatus.RUNNING, job2=JobStatus.RUNNING)
    clock = VirtualClock()
    settings = PollSettings(min_interval=1, max_interval=60)
    async with _client(server, clock, poll=settings) as client:
        adaptive = asyncio.ensure_future(client.jobs.wait("proj1", "job1"))
        pinned = asyncio.ensure_future(client.jobs.wait("proj1", "job2", poll_interval=3))
        await _until(lambda: len(clock.sleeps) >= 8)
        server.statuses.update(job1=JobStatus.COMPLETED, job2=JobStatus.COMPLETED)
        await asyncio.wait_for(asyncio.gather(adaptive, pinned), 5)
    assert max(clock.sleeps) <= 3  # the adaptive interval would have grown past 3 s
    assert server.count("GET", LIST) == client.stats().status_listings
