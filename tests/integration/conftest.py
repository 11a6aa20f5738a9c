from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from baseten_training_async import AsyncTrainingClient, RetryPolicy
from baseten_training_async.testing import FakeTrainingAPI

FAST_RETRIES = RetryPolicy(max_retries=6, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def api() -> AsyncIterator[FakeTrainingAPI]:
    async with FakeTrainingAPI(seed=7) as fake:
        yield fake


@pytest.fixture
async def client(api: FakeTrainingAPI) -> AsyncIterator[AsyncTrainingClient]:
    # A short timeout also bounds how long a lost create is looked for.
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, timeout=2, commit_window=2
    ) as c:
        yield c
