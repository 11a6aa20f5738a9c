"""The client's coordinator seam, with a recording coordinator and MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from baseten_training_async import AsyncTrainingClient, InvalidInputError, TrainingJob
from baseten_training_async.coordination import (
    CoordinationError,
    Coordinator,
    InProcessCoordinator,
    LeaseInfo,
)
from baseten_training_async.testing import MockTransport, fake_time, json_response

from ..conftest import job_json

KEY = "sk-seam-0123456789"


class Recording:
    """A coordinator that records every call and can be told to fail."""

    def __init__(self, *, reconcile: bool = False, fail_lease: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reconcile = reconcile
        self.fail_lease = fail_lease

    async def bind(self, *, key_fingerprint: str, clock: Any) -> None:
        self.calls.append(("bind", key_fingerprint))

    async def acquire(self, *, deadline: float | None) -> None:
        self.calls.append(("acquire", deadline is not None))

    async def report_rate_limited(self, retry_after: float | None) -> None:
        self.calls.append(("429", retry_after))

    @contextlib.asynccontextmanager
    async def lease(self, project_id: str, name: str) -> AsyncIterator[LeaseInfo]:
        if self.fail_lease:
            raise CoordinationError("Redis at redis://h:6379/0 failed while taking a lease")
        self.calls.append(("lease", project_id, name))
        yield LeaseInfo(waited=self.reconcile)
        self.calls.append(("released", name))

    async def aclose(self) -> None:
        self.calls.append(("aclose",))


def job(name: str, job_id: str) -> dict[str, Any]:
    return job_json(job_id, name=name)


def test_the_recording_coordinator_is_a_coordinator() -> None:
    assert isinstance(Recording(), Coordinator)
    assert isinstance(InProcessCoordinator(), Coordinator)
    with pytest.raises(InvalidInputError) as caught:
        AsyncTrainingClient(KEY, coordinator=object())  # type: ignore[arg-type]
    assert caught.value.field == "coordinator"


async def test_bound_with_a_hash_of_the_key_acquired_before_each_attempt_told_of_429s() -> None:
    answers = [json_response(429, {"error": "slow down", "retry_after": 2}), None]

    def handler(request: Any) -> Any:
        answer = answers.pop(0)
        return answer or json_response(200, {"training_job": job("a", "job-1")})

    coordinator = Recording()
    with fake_time():
        async with AsyncTrainingClient(
            KEY, transport=MockTransport(handler), coordinator=coordinator
        ) as client:
            created = await client.jobs.create(
                "proj-1", {"name": "a", "image": {"base_image": "x"}}
            )
    assert created.id == "job-1"
    fingerprint = hashlib.sha256(KEY.encode()).hexdigest()
    assert coordinator.calls == [
        ("bind", fingerprint),
        ("acquire", True),
        ("429", 2.0),
        ("acquire", True),
        ("aclose",),
    ]


async def test_create_many_with_adopt_existing_creates_under_a_lease() -> None:
    def handler(request: Any) -> Any:
        if request.method == "GET":
            return json_response(200, {"training_jobs": []})
        return json_response(200, {"training_job": job("a", "job-1")})

    coordinator = Recording()
    async with AsyncTrainingClient(
        KEY, transport=MockTransport(handler), coordinator=coordinator
    ) as client:
        results = await client.jobs.create_many(
            "proj-1", [{"name": "a", "image": {"base_image": "x"}}], adopt_existing=True
        )
    assert [r.id for r in results if isinstance(r, TrainingJob)] == ["job-1"]
    names = [c for c in coordinator.calls if c[0] in ("lease", "released")]
    assert names == [("lease", "proj-1", "a"), ("released", "a")]


async def test_a_name_leased_before_is_looked_up_and_adopted_not_created() -> None:
    listings = [[], [job("a", "job-other")]]  # the batch's listing, then the lease's

    def handler(request: Any) -> Any:
        if request.method == "GET":
            return json_response(200, {"training_jobs": listings.pop(0)})
        raise AssertionError("a create was sent for a name another worker made")

    async with AsyncTrainingClient(
        KEY, transport=MockTransport(handler), coordinator=Recording(reconcile=True)
    ) as client:
        results = await client.jobs.create_many(
            "proj-1", [{"name": "a", "image": {"base_image": "x"}}], adopt_existing=True
        )
    assert [r.id for r in results if isinstance(r, TrainingJob)] == ["job-other"]


async def test_a_lease_that_cannot_be_taken_fails_that_spec_before_sending() -> None:
    transport = MockTransport(lambda request: json_response(200, {"training_jobs": []}))
    async with AsyncTrainingClient(
        KEY, transport=transport, coordinator=Recording(fail_lease=True)
    ) as client:
        results = await client.jobs.create_many(
            "proj-1", [{"name": "a", "image": {"base_image": "x"}}], adopt_existing=True
        )
    assert isinstance(results[0], CoordinationError)
    assert results[0].maybe_committed is False
    assert [r.method for r in transport.requests] == ["GET"]


async def test_two_batches_on_one_client_take_turns_on_a_name_by_default() -> None:
    made: list[str] = []

    async def handler(request: Any) -> Any:
        if request.method == "GET":
            return json_response(200, {"training_jobs": [job("a", i) for i in made]})
        await asyncio.sleep(0.01)
        made.append(f"job-{len(made) + 1}")
        return json_response(200, {"training_job": job("a", made[-1])})

    spec = {"name": "a", "image": {"base_image": "x"}}
    async with AsyncTrainingClient(KEY, transport=MockTransport(handler)) as client:
        first, second = await asyncio.gather(
            client.jobs.create_many("proj-1", [spec], adopt_existing=True),
            client.jobs.create_many("proj-1", [spec], adopt_existing=True),
        )
    assert made == ["job-1"]
    assert [r.id for r in first + second if isinstance(r, TrainingJob)] == ["job-1", "job-1"]
