from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioresponses.core as aioresponses_core
import pytest
from aiohttp import ClientResponse
from aioresponses import aioresponses
from hypothesis import settings

from baseten_training_async import AsyncTrainingClient, RetryPolicy
from baseten_training_async.resources.jobs import SpecInput
from baseten_training_async.testing import MockTransport, VirtualClock, json_response


class _SentStream:
    output_size = 0


class _CompatClientResponse(ClientResponse):
    """aiohttp 3.14 made ``stream_writer`` required; aioresponses 0.7.x does not pass it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SentStream())
        super().__init__(*args, **kwargs)


if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
    setattr(aioresponses_core, "ClientResponse", _CompatClientResponse)  # noqa: B010

BASE = "https://api.test"
KEY = "sk-test-0123456789"


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock: every SDK wait is recorded in ``clock.sleeps`` and takes no time."""
    return VirtualClock()


@pytest.fixture
async def client(clock: VirtualClock) -> AsyncIterator[AsyncTrainingClient]:
    c = AsyncTrainingClient(
        KEY, base_url=BASE, retry_policy=RetryPolicy(max_retries=3), clock=clock
    )
    yield c
    await c.aclose()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def project_json(pid: str = "proj1", name: str = "p", **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "latest_job": None,
        **extra,
    }


def job_json(
    jid: str = "job1",
    status: str = "TRAINING_JOB_CREATED",
    name: str | None = None,
    created_at: str = "2026-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": jid,
        "created_at": created_at,
        "updated_at": created_at,
        "current_status": status,
        "instance_type": {
            "id": "H100x2",
            "name": "H100x2",
            "memory_limit_mib": 1024,
            "millicpu_limit": 1000,
            "gpu_count": 2,
            "gpu_type": "H100",
            "gpu_memory_limit_mib": 81920,
        },
        "training_project_id": "proj1",
        "training_project": {"id": "proj1", "name": "p"},
        "name": name,
        **extra,
    }


def sent_create_body(spec: SpecInput) -> bytes:
    """The body ``client.jobs.create`` sends for ``spec``, as a transport receives it."""
    transport = MockTransport(lambda request: json_response(200, {"training_job": job_json()}))

    async def create() -> bytes:
        async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport) as client:
            await client.jobs.create("proj1", spec)
        (request,) = transport.requests
        assert request.body is not None
        return request.body

    return asyncio.run(create())


# The official-client conformance tests need peers that live only in the
# `nox -s conformance` virtualenv; they run only when asked for.
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--conformance",
        action="store_true",
        help="collect tests/conformance (official clients against the fake; needs the peers)",
    )


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    if collection_path.name == "conformance" and not config.getoption("--conformance"):
        return True
    return None


# No per-example deadline for property tests: timing is never asserted by tests, and
# on a small shared machine running pytest-xdist workers a 200 ms deadline is missed
# at random. Every example still has to pass; only the stopwatch is off.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist ``--dist loadgroup``, run the slow tests one after another.

    They are CPU-heavy fault-injection runs; two at once on a small machine only
    slow each other down (and everything else) without finishing sooner.
    """
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.xdist_group("slow"))
