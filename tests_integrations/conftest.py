from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from baseten_training_async import AsyncTrainingClient, RetryPolicy
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings

FAST_RETRIES = RetryPolicy(max_retries=4, initial_backoff=0.01, max_backoff=0.05)
SPEC = {"image": {"base_image": "hello-world"}}


@pytest.fixture
async def api() -> AsyncIterator[FakeTrainingAPI]:
    # Each phase of a job lasts 50 ms of real time: created, deploying, running.
    async with FakeTrainingAPI(
        seed=11,
        clock=FakeClock.real(speed=20.0),
        timings=JobTimings(created=1, deploying=1, running=1),
    ) as fake:
        yield fake


@pytest.fixture
async def client(api: FakeTrainingAPI) -> AsyncIterator[AsyncTrainingClient]:
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, timeout=2
    ) as c:
        yield c
