"""Exactly once at the edges: late commits, garbled successes, resends past the window.

Over real sockets against the fake, whose deferred-commit faults commit a create on
the server's own schedule, whether or not the client is still waiting.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from baseten_training_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncTrainingClient,
    DuplicateJobWarning,
    RetryPolicy,
    TrainingJob,
)
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route

FAST = RetryPolicy(max_retries=6, initial_backoff=0.01, max_backoff=0.05)


def _spec(name: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"image": {"base_image": "hello-world"}}
    if name is not None:
        spec["name"] = name
    return spec


def _names(api: FakeTrainingAPI) -> Counter[str | None]:
    return Counter(job.spec.get("name") for job in api.jobs.values())


@pytest.mark.parametrize(
    "delay", [1.0, 5.0, pytest.param(20.0, marks=pytest.mark.slow)], ids=["1s", "5s", "20s"]
)
async def test_a_create_committed_late_is_adopted_not_resent(delay: float) -> None:
    async with FakeTrainingAPI(seed=3, clock=FakeClock.real()) as api:
        # The default commit window (60 s) outlasts every one of these delays.
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=0.3, retry_policy=FAST
        ) as client:
            project = await client.projects.upsert("late")
            api.inject("late_commit", route=Route.CREATE_JOB, delay=delay, times=1)
            started = time.perf_counter()
            job = await client.jobs.create(project.id, _spec("late-job"))
            elapsed = time.perf_counter() - started
            stats = client.stats()
        await api.wait_for_commits(timeout=5)
        print(
            f"\nlate commit {delay:g}s, timeout 0.3s: {len(api.requests)} requests, "
            f"{stats.reconciliations} reconciliations, {stats.resent} resends, {elapsed:.2f}s"
        )
        assert _names(api) == {"late-job": 1}
        assert job.id in api.jobs
        assert (stats.adopted, stats.resent) == (1, 0)
        assert len(api.requests_for(Route.CREATE_JOB)) == 1
        assert delay <= elapsed < delay + 5


@pytest.mark.slow
async def test_create_many_with_5_percent_late_commits_makes_one_job_per_name() -> None:
    async with FakeTrainingAPI(seed=4, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=0.3, retry_policy=FAST
        ) as client:
            project = await client.projects.upsert("late-batch")
            api.inject("late_commit", route=Route.CREATE_JOB, delay=1.0, probability=0.05)
            names = [f"late-{i:03d}" for i in range(200)]
            started = time.perf_counter()
            results = await client.jobs.create_many(
                project.id, [_spec(n) for n in names], concurrency=32
            )
            elapsed = time.perf_counter() - started
            stats = client.stats()
        await api.wait_for_commits(timeout=5)
        late = api.stats.injected.get("late_commit", 0)
        print(
            f"\ncreate_many of 200, {late} late commits (1s), timeout 0.3s: "
            f"{len(api.requests)} requests, {stats.reconciliations} reconciliations, "
            f"{stats.adopted} adopted, {stats.resent} resends, {elapsed:.2f}s"
        )
        assert late > 0
        assert all(isinstance(r, TrainingJob) for r in results)
        assert [r.name for r in results if isinstance(r, TrainingJob)] == names
        assert _names(api) == Counter(names)
        # Every late commit was adopted, never resent; on a busy machine some
        # on-time creates also outlast 0.3 s and are adopted the same way.
        assert stats.adopted >= late


async def test_a_commit_later_than_the_window_is_reported_and_stopped() -> None:
    async with FakeTrainingAPI(seed=5, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key,
            base_url=api.url,
            timeout=0.3,
            retry_policy=FAST,
            commit_window=1.0,
            stop_duplicates=True,
        ) as client:
            project = await client.projects.upsert("too-late")
            # Lands after the window (0.3 s + 1 s) and after the resend: a server
            # breaking the window's assumption. It cannot be prevented; it must be said.
            api.inject("late_commit", route=Route.CREATE_JOB, delay=1.8, times=1)
            with pytest.warns(DuplicateJobWarning, match="commit window"):
                job = await client.jobs.create(project.id, _spec("twice"))
            stats = client.stats()
        await api.wait_for_commits(timeout=5)
        assert stats.resent == 1
        assert _names(api) == {"twice": 2}
        (other,) = [j for j in api.jobs.values() if j.id != job.id]
        assert stats.duplicates == (("twice", other.id),)
        assert len(api.requests_for(Route.STOP_JOB)) == 1
        stopped = await AsyncTrainingClient(api.api_key, base_url=api.url).__aenter__()
        try:
            assert (await stopped.jobs.retrieve(project.id, other.id)).current_status == (
                "TRAINING_JOB_STOPPED"
            )
        finally:
            await stopped.aclose()


async def test_a_garbled_2xx_is_proof_of_commit() -> None:
    async with FakeTrainingAPI(seed=6, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=2, retry_policy=FAST
        ) as client:
            project = await client.projects.upsert("garbled")
            api.inject("commit_then_garble", route=Route.CREATE_JOB, times=1)
            job = await client.jobs.create(project.id, _spec("named"))
            assert job.name == "named"
            api.inject("commit_then_garble", route=Route.CREATE_JOB, times=1)
            with pytest.raises(APIResponseValidationError) as info:
                await client.jobs.create(project.id, _spec())
            assert info.value.committed is True
            assert client.stats().resent == 0
        await api.wait_for_commits(timeout=5)
        assert len(api.jobs) == 2
        assert len(api.requests_for(Route.CREATE_JOB)) == 2


async def test_commit_then_stall_past_the_timeout_is_adopted() -> None:
    async with FakeTrainingAPI(seed=7, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=0.3, retry_policy=FAST
        ) as client:
            project = await client.projects.upsert("stall")
            api.inject("commit_then_stall", route=Route.CREATE_JOB, delay=0.5, stall=5, times=1)
            job = await client.jobs.create(project.id, _spec("stalled"))
            assert client.stats().adopted == 1
        assert _names(api) == {"stalled": 1}
        assert job.id in api.jobs


async def test_raise_on_unknown_outcome_reports_at_once() -> None:
    async with FakeTrainingAPI(seed=8, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key,
            base_url=api.url,
            timeout=0.3,
            retry_policy=FAST,
            on_unknown_outcome="raise",
        ) as client:
            project = await client.projects.upsert("raise")
            api.inject("late_commit", route=Route.CREATE_JOB, delay=1.0, times=1)
            started = time.perf_counter()
            with pytest.raises(APIConnectionError) as info:
                await client.jobs.create(project.id, _spec("maybe"))
            assert time.perf_counter() - started < 1.0
            assert info.value.maybe_committed is True
            assert info.value.spec is not None
            assert info.value.spec.name == "maybe"
            assert client.stats().reconciliations == 0
        await api.wait_for_commits(timeout=5)
        assert _names(api) == {"maybe": 1}  # it did land: never sent twice
