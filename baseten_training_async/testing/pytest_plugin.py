"""Pytest plugin providing a running `FakeTrainingAPI` as the ``fake_api`` fixture.

Enable it in a ``conftest.py``::

    pytest_plugins = ["baseten_training_async.testing.pytest_plugin"]

Then request the fixture in async tests (pytest-asyncio is required)::

    async def test_create(fake_api):
        client = AsyncTrainingClient(api_key=fake_api.api_key, base_url=fake_api.url)
        ...
        assert len(fake_api.jobs) == 1

Configure the server per test with the ``fake_api`` marker, whose keyword arguments
go to `FakeTrainingAPI`::

    @pytest.mark.fake_api(seed=3, capacity=2, rate_limit=50)
    async def test_queueing(fake_api): ...

The ``fake_clock`` fixture is the manual `FakeClock` the ``fake_api`` fixture uses
(unless the marker passes its own ``clock``): advance it to move jobs along.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ._clock import FakeClock
from ._server import FakeTrainingAPI

__all__ = ["fake_api", "fake_clock", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_api`` marker.

    Args:
        config: The pytest config.
    """
    config.addinivalue_line(
        "markers", "fake_api(**kwargs): keyword arguments for the fake_api fixture's server"
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    """A manual fake clock starting at the current time.

    Returns:
        The clock.
    """
    return FakeClock()


@pytest_asyncio.fixture
async def fake_api(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> AsyncIterator[FakeTrainingAPI]:
    """A started `FakeTrainingAPI` on a free localhost port, stopped after the test.

    Args:
        request: The pytest request (reads the ``fake_api`` marker).
        fake_clock: The clock given to the server unless the marker passes one.

    Yields:
        The running fake.
    """
    marker = request.node.get_closest_marker("fake_api")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    kwargs.setdefault("clock", fake_clock)
    async with FakeTrainingAPI(**kwargs) as api:
        yield api
