"""Cancelling thousands of paced calls leaves no reservation behind.

A client paced by a rate-limited server (the fake's token bucket) starts 2,000
calls and cancels every one of them at a random point: queued for a pacing slot,
waiting for a concurrency slot, on the wire, or retrying. Then one call is timed:
it must take about one round trip plus one pacing interval, not the sum of the
pacing slots the cancelled calls had reserved.
"""

from __future__ import annotations

import asyncio
import random
import time

from baseten_training_async import AsyncTrainingClient, BasetenError, RetryPolicy
from baseten_training_async.testing import FakeTrainingAPI

CALLS = 2_000
# Long enough that every storm call queues for a pacing slot (2,000 calls at ~50/s
# need 40 s) instead of being refused at once for lack of time.
PATIENT = RetryPolicy(max_retries=20, initial_backoff=0.01, max_backoff=0.1, deadline=120)


async def test_one_call_after_a_cancellation_storm_waits_one_pacing_interval() -> None:
    rng = random.Random(2026)
    async with FakeTrainingAPI(seed=5, rate_limit=50, rate_burst=50) as api:
        project = api.add_project("storm")
        job = api.add_job(project.id)
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=60, retry_policy=PATIENT
        ) as client:

            async def call() -> None:
                await client.jobs.retrieve(project.id, job.id)

            # Drive the client into pacing with bursts well above the server's limit.
            for _ in range(10):
                if client.flow_control.pace is not None:
                    break
                burst = [asyncio.create_task(call()) for _ in range(200)]
                await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), 60)
            pace = client.flow_control.pace
            assert pace is not None, "the rate limit never made the client pace"

            # The storm: every call is cancelled at a random point within 1.5 s.
            loop = asyncio.get_running_loop()
            storm = [asyncio.create_task(call()) for _ in range(CALLS)]
            for task in storm:
                loop.call_later(rng.uniform(0.0, 1.5), task.cancel)
            started = time.perf_counter()
            results = await asyncio.wait_for(asyncio.gather(*storm, return_exceptions=True), 30)
            storm_seconds = time.perf_counter() - started
            cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
            succeeded = sum(r is None for r in results)
            foreign = [r for r in results if isinstance(r, Exception)]
            assert all(isinstance(r, BasetenError) for r in foreign), foreign[:3]
            assert client.stats().in_flight == 0

            # Let any 429 cool-down from the storm pass: pacing holds far longer (30 s).
            await asyncio.sleep(0.2)
            pace = client.flow_control.pace
            assert pace is not None
            interval = 1.0 / pace
            started = time.perf_counter()
            await asyncio.wait_for(call(), 10)
            one_call = time.perf_counter() - started
            stats = client.stats()

        # A round trip to the same server from a client that is not pacing.
        async with AsyncTrainingClient(api.api_key, base_url=api.url, timeout=5) as fresh:
            await fresh.jobs.retrieve(project.id, job.id)  # connect
            started = time.perf_counter()
            await fresh.jobs.retrieve(project.id, job.id)
            round_trip = time.perf_counter() - started

    print(
        f"\nstorm of {CALLS} paced calls in {storm_seconds:.2f}s: {cancelled} cancelled, "
        f"{succeeded} completed, {len(foreign)} failed; pace {pace:.1f}/s "
        f"(interval {interval * 1000:.1f} ms); round trip {round_trip * 1000:.1f} ms; "
        f"next call took {one_call * 1000:.1f} ms "
        f"(bound: round trip + interval = {(round_trip + interval) * 1000:.1f} ms)"
    )
    assert cancelled > CALLS // 2  # most calls really were cancelled, not completed
    assert stats.in_flight == 0
    assert one_call < 2.0
