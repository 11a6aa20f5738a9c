"""Fault injection at scale: nothing lost, nothing launched twice.

Each test bounds its request count and wall time, and prints what it saw.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from baseten_training_async import AsyncTrainingClient, RetryPolicy, TrainingJob
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route

pytestmark = pytest.mark.slow

CHAOS_RETRIES = RetryPolicy(max_retries=8, initial_backoff=0.02, max_backoff=0.2)


def _spec(name: str) -> dict[str, object]:
    return {"image": {"base_image": "hello-world"}, "name": name}


def _duplicates(api: FakeTrainingAPI) -> dict[str | None, int]:
    names = Counter(job.spec.get("name") for job in api.jobs.values())
    return {name: n for name, n in names.items() if n > 1}


async def test_1000_creates_under_503_429_and_drops() -> None:
    async with FakeTrainingAPI(seed=11, clock=FakeClock.real()) as api:
        api.inject("status", route=Route.CREATE_JOB, status=503, probability=0.10)
        api.inject("status", route=Route.CREATE_JOB, status=429, retry_after=0.05, probability=0.05)
        api.inject("drop_before", route=Route.CREATE_JOB, probability=0.02)
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, retry_policy=CHAOS_RETRIES, timeout=5, commit_window=2
        ) as client:
            project = await client.projects.upsert("chaos")
            gate = asyncio.Semaphore(50)

            async def create(i: int) -> TrainingJob:
                async with gate:
                    return await client.jobs.create(project.id, _spec(f"job-{i:04d}"))

            started = time.perf_counter()
            jobs = await asyncio.wait_for(
                asyncio.gather(*(create(i) for i in range(1000))), timeout=120
            )
            elapsed = time.perf_counter() - started
            stats = client.stats()

        sent = len(api.requests)
        print(
            f"\n1000 creates at concurrency 50: {sent} requests, {stats.retries} retries, "
            f"{stats.reconciliations} reconciliations ({stats.adopted} adopted, "
            f"{stats.resent} resent), {elapsed:.2f}s"
        )
        assert len(api.jobs) == 1000
        assert _duplicates(api) == {}
        assert all(isinstance(job, TrainingJob) for job in jobs)
        assert sorted(job.name or "" for job in jobs) == [f"job-{i:04d}" for i in range(1000)]
        assert len({job.id for job in jobs}) == 1000
        # ~17% of attempts fail; retries and reconciliation listings stay bounded.
        assert sent < 1600, sent
        assert elapsed < 60


async def _chaos_batch(seed: int, *, late_commits: float) -> None:
    """2,000 named specs through create_many under the faults of issue 5 (and late commits)."""
    async with FakeTrainingAPI(seed=seed, clock=FakeClock.real()) as api:
        route = Route.CREATE_JOB
        api.inject("status", route=route, status=503, probability=0.10)
        api.inject("status", route=route, status=429, retry_after=0.05, probability=0.05)
        api.inject("drop_after_commit", route=route, probability=0.03)
        api.inject("drop_before", route=route, probability=0.02)
        api.inject("latency", route=route, delay=1.5, probability=0.01)
        if late_commits:
            api.inject("late_commit", route=route, delay=3.0, probability=late_commits)
        async with AsyncTrainingClient(
            api.api_key,
            base_url=api.url,
            retry_policy=CHAOS_RETRIES,
            timeout=1.0,
            max_concurrency=64,
            commit_window=4.0,  # longer than the 3 s late commits
        ) as client:
            project = await client.projects.upsert("fanout")
            api.add_job(project.id, _spec("pre-existing"))
            names = [f"spec-{i:05d}" for i in range(2000)]
            started = time.perf_counter()
            results = await asyncio.wait_for(
                client.jobs.create_many(project.id, (_spec(n) for n in names), concurrency=64),
                timeout=300,
            )
            elapsed = time.perf_counter() - started
            stats = client.stats()
        await api.wait_for_commits(timeout=10)

        sent = len(api.requests)
        print(
            f"\n2000 specs via create_many(concurrency=64), late commits {late_commits:.0%}: "
            f"{sent} requests, {stats.retries} retries, {stats.reconciliations} "
            f"reconciliations ({stats.adopted} adopted, {stats.resent} resent, "
            f"{stats.listings} listings for {stats.lookups} lookups), "
            f"{len(stats.duplicates)} duplicates reported, "
            f"faults {dict(api.stats.injected)}, {elapsed:.2f}s"
        )
        # Every input maps to its job (or to a typed error, of which there are none here).
        assert [type(r) for r in results] == [TrainingJob] * 2000, [
            r for r in results if not isinstance(r, TrainingJob)
        ][:3]
        assert [r.name for r in results if isinstance(r, TrainingJob)] == names
        assert len(api.jobs) == 2001
        assert _duplicates(api) == {}
        assert stats.duplicates == ()
        for result in results:
            assert isinstance(result, TrainingJob)
            assert api.jobs[result.id].spec["name"] == result.name
        assert stats.adopted > 0  # drops after commit were adopted, not resent
        # Concurrent lookups share listings.
        assert stats.listings < stats.lookups / 2
        assert sent < 4000, sent


async def test_2000_named_specs_exactly_once_through_create_many() -> None:
    await _chaos_batch(5, late_commits=0.0)


async def test_2000_named_specs_with_late_commits_make_no_unreported_duplicate() -> None:
    await _chaos_batch(6, late_commits=0.02)


async def _storm(creates: int, *, shared_backoff: bool) -> tuple[int, int, float]:
    async with FakeTrainingAPI(seed=2, rate_limit=50, rate_burst=50) as api:
        policy = RetryPolicy(
            max_retries=10_000, initial_backoff=0.01, max_backoff=0.05, deadline=None
        )
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, retry_policy=policy, max_concurrency=64
        ) as client:
            client.flow_control.shared_backoff = shared_backoff
            project = await client.projects.upsert("storm")
            before = len(api.requests)
            started = time.perf_counter()
            results = await asyncio.wait_for(
                client.jobs.create_many(
                    project.id, (_spec(f"s{i}") for i in range(creates)), concurrency=64
                ),
                timeout=120,
            )
            elapsed = time.perf_counter() - started
        assert all(isinstance(r, TrainingJob) for r in results)
        records = api.requests[before:]
        limited = sum(1 for r in records if r.status == 429)
        return len(records), limited, elapsed


async def test_429_storm_is_absorbed_by_the_shared_gate() -> None:
    sent, limited, elapsed = await _storm(1000, shared_backoff=True)
    share = limited / sent
    print(
        f"\n429 storm, shared gate and pacing: 1000 creates, {sent} requests, "
        f"{limited} 429s ({share:.1%}), {elapsed:.1f}s"
    )
    sent_raw, limited_raw, elapsed_raw = await _storm(200, shared_backoff=False)
    share_raw = limited_raw / sent_raw
    print(
        f"429 storm, each task on its own: 200 creates, {sent_raw} requests, "
        f"{limited_raw} 429s ({share_raw:.1%}), {elapsed_raw:.1f}s"
    )
    assert share < 0.15
    assert share_raw > 2 * share
    assert elapsed < 60
