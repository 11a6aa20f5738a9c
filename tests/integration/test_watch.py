"""The shared status poller against the fake over sockets (issue 15).

Every client here runs on the fake's linked clock: each pause of the client moves
the fake's jobs forward as much, so hours of job time pass in no real time and the
fake's request log says exactly when (in fake time) each listing arrived.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    JobEvent,
    JobFailedError,
    JobStatus,
    PollSettings,
    WaitTimeoutError,
)
from baseten_training_async.testing import FakeTrainingAPI, JobTimings, RequestRecord, Route

IMAGE = {"base_image": "hello-world"}


def _client(api: FakeTrainingAPI, **options: Any) -> AsyncTrainingClient:
    return AsyncTrainingClient(api.api_key, base_url=api.url, clock=api.linked_clock(), **options)


def _listings(api: FakeTrainingAPI, project_id: str) -> list[RequestRecord]:
    return [r for r in api.requests_for(Route.LIST_JOBS) if project_id in r.path]


async def test_a_thousand_waits_share_one_listing_per_interval() -> None:
    settings = PollSettings(min_interval=1.0, max_interval=20.0)
    timings = JobTimings(created=5.0, deploying=10.0, running=120.0)
    async with FakeTrainingAPI(seed=15, timings=timings, log_every=None) as api:
        project = api.add_project("a-thousand")
        ids = [api.add_job(project.id, {"name": f"j{i}", "image": IMAGE}).id for i in range(1000)]
        # A few listings fail and are retried: "one per interval, plus retries".
        api.inject("status", route=Route.LIST_JOBS, status=503, probability=0.1)
        started = api.clock.now()
        wall = time.perf_counter()
        async with _client(api, poll=settings) as client:
            jobs = await asyncio.wait_for(
                asyncio.gather(*(client.jobs.wait(project.id, j) for j in ids)), 120
            )
            stats = client.stats()
        wall = time.perf_counter() - wall
        elapsed = api.clock.now() - started
        listings = _listings(api, project.id)
        retried = [r for r in listings if r.outcome.startswith("injected")]

        # Per-job polling, for comparison: each of the 1000 waiters GETs its job once
        # per interval (three intervals, in lockstep on the same fake clock).
        gets_before = len(api.requests_for(Route.GET_JOB))
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as plain:
            for _ in range(3):
                await asyncio.wait_for(
                    asyncio.gather(*(plain.jobs.retrieve(project.id, j) for j in ids)), 60
                )
                api.clock.advance(settings.min_interval)
        per_job = (len(api.requests_for(Route.GET_JOB)) - gets_before) / 3

    assert [job.current_status for job in jobs] == [JobStatus.COMPLETED] * 1000
    assert [job.id for job in jobs] == ids
    # Only listings served the waits: no per-job GET at all.
    assert stats.status_lookups == 0
    assert len(listings) == stats.status_listings + len(retried)
    # A poll is a listing that is not a retry of a failed one; polls are one interval
    # or more apart, so every interval has at most one listing plus its retries.
    polls = [r for i, r in enumerate(listings) if i == 0 or listings[i - 1] not in retried]
    assert len(polls) == len(listings) - len(retried)
    for before, after in itertools.pairwise(polls):
        assert after.time - before.time >= settings.min_interval - 1e-6, (before, after)
    intervals = elapsed / settings.min_interval
    served = len(polls)
    assert served <= intervals + 1
    assert per_job == 1000
    print(
        f"\n1000 concurrent wait(): {len(listings)} listings ({len(retried)} retried 503s) "
        f"over {elapsed:.0f} fake s = {served / intervals:.2f} served per "
        f"{settings.min_interval:g}-s interval; per-job polling: {per_job:.0f} GETs per "
        f"interval; {wall:.2f}s of wall time"
    )


async def test_watch_reports_every_transition_the_fake_made_once_in_order() -> None:
    timings = JobTimings(created=3.0, deploying=4.0, running=20.0)
    async with FakeTrainingAPI(seed=7, timings=timings, log_every=None) as api:
        api.inject("preemption", probability=0.2, after=6.0)
        async with _client(api) as client:
            project = await client.projects.upsert("watched")
            specs = [
                {"name": f"run-{i}" + ("-fail" if i % 10 == 3 else ""), "image": IMAGE}
                for i in range(500)
            ]
            created = await client.jobs.create_many(project.id, specs, return_exceptions=False)
            ids = [job.id for job in created]
            events: list[JobEvent] = []

            async def collect() -> None:
                async for event in client.jobs.watch(project.id, job_ids=ids):
                    events.append(event)

            await asyncio.wait_for(collect(), 120)
        histories = {j: [status for _, status in api.status_history(j)] for j in ids}

    by_job: dict[str, list[JobEvent]] = {j: [] for j in ids}
    for event in events:
        by_job[event.job.id].append(event)
    for job_id in ids:
        seen = [event.status for event in by_job[job_id]]
        assert seen == histories[job_id], job_id
        previous = [event.previous for event in by_job[job_id]]
        assert previous == [None, *seen[:-1]]
    finals = [histories[j][-1] for j in ids]
    # One in ten fails at the end of its run unless preempted first.
    assert 30 <= finals.count(JobStatus.FAILED) <= 50
    assert 60 <= finals.count(JobStatus.PREEMPTED) <= 140
    assert len(events) == sum(len(h) for h in histories.values())
    assert all(a.seen_at <= b.seen_at for a, b in itertools.pairwise(events))
    print(f"\nwatch() over 500 jobs: {len(events)} events, every transition of the fake once")


async def test_wait_many_return_when_and_failure_context() -> None:
    timings = JobTimings(created=1.0, deploying=1.0, running=10.0)
    async with FakeTrainingAPI(seed=3, timings=timings, log_every=1.0) as api:
        async with _client(api) as client:
            project = await client.projects.upsert("many")
            fast = await client.jobs.create(project.id, {"name": "fast-fail", "image": IMAGE})
            api.clock.advance(5)
            slow = await client.jobs.create(project.id, {"name": "slow", "image": IMAGE})
            done, pending = await client.jobs.wait_many(
                project.id, [slow.id, fast.id], return_when="FIRST_FAILED", log_tail=3
            )
            assert list(done) == [fast.id]
            assert list(pending) == [slow.id]
            failed = done[fast.id]
            assert failed.current_status == JobStatus.FAILED
            assert failed.log_tail is not None
            assert len(failed.log_tail) == 3
            assert "fake training failure" in failed.log_tail[-1].message
            with pytest.raises(JobFailedError) as info:
                await client.jobs.wait(project.id, fast.id, raise_on_failure=True, log_tail=2)
            assert info.value.job.id == fast.id
            assert [line.message for line in info.value.log_tail] == [
                line.message for line in failed.log_tail[-2:]
            ]
            done, pending = await client.jobs.wait_many(project.id, [slow.id, fast.id])
            assert pending == {}
            assert done[slow.id].current_status == JobStatus.COMPLETED
            assert done[slow.id].log_tail is None  # only failures carry a tail


async def test_timeouts_act_raise_or_stop_and_cap_pending_and_running() -> None:
    timings = JobTimings(created=1.0, deploying=1.0, running=3600.0)
    async with FakeTrainingAPI(seed=4, timings=timings, log_every=None, capacity=1) as api:
        async with _client(api) as client:
            project = await client.projects.upsert("limits")
            first = await client.jobs.create(project.id, {"name": "long", "image": IMAGE})
            queued = await client.jobs.create(project.id, {"name": "queued", "image": IMAGE})
            with pytest.raises(WaitTimeoutError) as info:
                await client.jobs.wait(project.id, first.id, timeout=60)
            assert info.value.reason == "timeout"
            assert info.value.job.current_status == JobStatus.RUNNING
            # The queued job waits for capacity: its pending cap stops it.
            stopped = await client.jobs.wait(
                project.id, queued.id, max_pending=30, on_timeout="stop"
            )
            assert stopped.current_status == JobStatus.STOPPED
            assert stopped.stopped_for == "max_pending"
            assert api.job_status(queued.id) == JobStatus.STOPPED
            # The long one is capped while running.
            before = api.clock.now()
            capped = await client.jobs.wait(
                project.id, first.id, max_running=600, on_timeout="stop"
            )
            assert capped.stopped_for == "max_running"
            assert api.job_status(first.id) == JobStatus.STOPPED
            assert api.clock.now() - before <= 600 + 31  # about when it crossed the cap


async def test_waits_of_two_projects_and_a_late_joiner() -> None:
    timings = JobTimings(created=1.0, deploying=2.0, running=30.0)
    async with FakeTrainingAPI(seed=5, timings=timings, log_every=None) as api:
        a = api.add_project("a")
        b = api.add_project("b")
        ja = [api.add_job(a.id, {"name": f"a{i}", "image": IMAGE}).id for i in range(20)]
        jb = [api.add_job(b.id, {"name": f"b{i}", "image": IMAGE}).id for i in range(20)]
        async with _client(api) as client:
            first = asyncio.gather(*(client.jobs.wait(a.id, j) for j in ja))
            await asyncio.sleep(0.05)
            second = asyncio.gather(*(client.jobs.wait(b.id, j) for j in jb))
            results = await asyncio.wait_for(asyncio.gather(first, second), 60)
            stats = client.stats()
        assert all(job.current_status == JobStatus.COMPLETED for r in results for job in r)
        listed = _listings(api, a.id) + _listings(api, b.id)
        assert stats.status_listings == len(listed)
        assert len(api.requests_for(Route.GET_JOB)) == 0


async def test_supervise_relaunches_preempted_jobs_from_their_latest_checkpoint() -> None:
    timings = JobTimings(created=2.0, deploying=3.0, running=30.0)
    async with FakeTrainingAPI(seed=20, timings=timings) as api:
        api.inject("preemption", probability=0.2, after=15.0)  # after checkpoint-10
        specs = [{"name": f"sft-{i}", "image": IMAGE} for i in range(100)]
        seen: list[JobEvent] = []
        async with _client(api) as client:
            project = await client.projects.upsert("supervised")
            runs = await asyncio.wait_for(
                client.jobs.supervise(project.id, specs, max_attempts=5, on_event=seen.append),
                120,
            )
            creates = api.requests_for(Route.CREATE_JOB)
            # The same call again (a re-run after a crash, say): nothing new is launched.
            again = await asyncio.wait_for(client.jobs.supervise(project.id, specs), 60)
            assert len(api.requests_for(Route.CREATE_JOB)) == len(creates)

        assert [run.name for run in runs] == [spec["name"] for spec in specs]
        assert all(run.completed for run in runs)
        assert all(1 <= len(run.attempts) <= 5 for run in runs)
        relaunched = [run for run in runs if len(run.attempts) > 1]
        assert 10 <= len(relaunched) <= 35
        bodies = {r.body["training_job"]["name"]: r.body["training_job"] for r in creates}
        assert len(bodies) == len(creates)  # every name sent once
        for run in runs:
            for before, attempt in itertools.pairwise(run.attempts):
                assert before.status == JobStatus.PREEMPTED
                assert attempt.name == f"{run.name}-attempt-{attempt.number}"
                stored = api.jobs[before.job.id].checkpoints
                latest = max(stored, key=lambda c: c["created_at"])["checkpoint_id"]
                assert latest == "checkpoint-10"
                assert [c.checkpoint_id for c in before.checkpoints] == [
                    c["checkpoint_id"] for c in stored
                ]
                load = bodies[attempt.name]["runtime"]["load_checkpoint_config"]
                assert load["enabled"] is True
                assert load["checkpoints"] == [
                    {
                        "typ": "baseten_named_checkpoint",
                        "checkpoint_name": latest,
                        "job_id": before.job.id,
                    }
                ]
                assert (attempt.resumed_from, attempt.resumed_from_job) == (latest, before.job.id)
            assert run.attempts[-1].checkpoints  # the completed attempt's, recorded too
        assert "load_checkpoint_config" not in str(
            [b for name, b in bodies.items() if "-attempt-" not in name]
        )
        # The re-run found every attempt by name and reports the same jobs.
        assert [[a.job.id for a in r.attempts] for r in again] == [
            [a.job.id for a in r.attempts] for r in runs
        ]
        assert all(run.completed for run in again)
        assert {event.job.id for event in seen} == {a.job.id for r in runs for a in r.attempts}
    print(
        f"\nsupervise() over 100 specs, 20% preemption: {len(relaunched)} runs relaunched, "
        f"{len(creates)} creates, all COMPLETED; re-run launched 0"
    )


async def test_supervise_retries_failures_when_asked_and_stops_at_max_attempts() -> None:
    timings = JobTimings(created=1.0, deploying=1.0, running=12.0)
    async with FakeTrainingAPI(seed=21, timings=timings) as api:
        async with _client(api) as client:
            project = await client.projects.upsert("retry-failures")
            specs = [
                {"name": "flaky-fail", "image": IMAGE, "runtime": {"start_commands": ["x"]}},
                {"name": "fine", "image": IMAGE},
            ]
            runs = await client.jobs.supervise(
                project.id,
                specs,
                max_attempts=2,
                relaunch_on=[JobStatus.PREEMPTED, JobStatus.FAILED],
                resume_from_checkpoint=False,
            )
        bodies = {
            r.body["training_job"]["name"]: r.body["training_job"]
            for r in api.requests_for(Route.CREATE_JOB)
        }
    flaky, fine = runs
    assert [a.name for a in flaky.attempts] == ["flaky-fail", "flaky-fail-attempt-2"]
    assert flaky.status == JobStatus.FAILED
    assert not flaky.completed
    assert flaky.error is None
    assert fine.completed
    assert [a.number for a in fine.attempts] == [1]
    # Without resuming, a relaunch is the spec as given under its attempt name.
    assert bodies["flaky-fail-attempt-2"] == {
        **bodies["flaky-fail"],
        "name": "flaky-fail-attempt-2",
    }
    assert flaky.attempts[1].resumed_from is None
    assert len(flaky.checkpoints) == 4  # checkpoint-5 and -10 of each attempt


async def test_supervise_reports_a_launch_that_failed_and_carries_on() -> None:
    async with FakeTrainingAPI(seed=22, timings=JobTimings(running=5.0)) as api:
        api.inject("status", route=Route.CREATE_JOB, status=400, times=1)
        async with _client(api) as client:
            project = await client.projects.upsert("launch-failures")
            specs = [{"name": f"r{i}", "image": IMAGE} for i in range(3)]
            runs = await client.jobs.supervise(project.id, specs, concurrency=1)
    failed = [run for run in runs if run.error is not None]
    assert len(failed) == 1
    assert failed[0].attempts == []
    assert failed[0].status is None
    assert failed[0].job is None
    assert not failed[0].completed
    assert sum(run.completed for run in runs) == 2
