"""Creates the server commits and then answers with pathological JSON.

A 2xx is proof of commit: whatever its body, the job exists. So a create whose
success body cannot be read is adopted by name, or raised marked as committed;
it is never sent again. Against the bundled fake over real sockets, with the
``commit_then_garble`` fault on a share of the creates.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Mapping, Sequence

import pytest

from baseten_training_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncTrainingClient,
    BasetenError,
    CreateManyError,
    RetryPolicy,
    TrainingJob,
)
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route

FAST = RetryPolicy(max_retries=6, initial_backoff=0.01, max_backoff=0.05)

BODIES = {
    # Typed decoding refuses the first "[": a schema mismatch.
    "deep-array": b"[" * 100_000,
    # An unknown field is skipped by depth: the decoder's recursion limit.
    "deep-inside-envelope": b'{"junk": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b', "training_job": {"id": 5}}',
    # Not closed at all.
    "deep-unclosed-object": b'{"a": ' * 50_000,
}

Result = TrainingJob | BaseException


def _spec(name: str) -> dict[str, object]:
    return {"name": name, "image": {"base_image": "hello-world"}}


def _is_committed_error(error: BaseException) -> bool:
    if isinstance(error, APIResponseValidationError):
        return error.committed
    return isinstance(error, APIConnectionError) and error.maybe_committed


def _account(api: FakeTrainingAPI, project_id: str, results: Mapping[str, Result]) -> None:
    """One job per name on the server, and every result is that job or a committed error."""
    server: dict[str, list[str]] = defaultdict(list)
    for job in api.jobs.values():
        if job.project_id == project_id:
            server[str(job.spec.get("name"))].append(job.id)
    assert {name: len(ids) for name, ids in server.items()} == dict.fromkeys(results, 1)
    for name, result in results.items():
        if isinstance(result, TrainingJob):
            assert [result.id] == server[name]
            assert result.name == name
        else:
            assert isinstance(result, BasetenError), repr(result)
            assert _is_committed_error(result), repr(result)
    named_in_results = {r.id for r in results.values() if isinstance(r, TrainingJob)}
    assert named_in_results <= {ids[0] for ids in server.values()}


def _garbled(api: FakeTrainingAPI) -> int:
    return sum(r.outcome == "committed_then_garbled" for r in api.requests_for(Route.CREATE_JOB))


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
async def test_create_one_by_one(body: bytes) -> None:
    async with FakeTrainingAPI(seed=21, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=2, retry_policy=FAST, commit_window=2
        ) as client:
            project = await client.projects.upsert("garbled-one")
            api.inject("commit_then_garble", route=Route.CREATE_JOB, body=body, probability=0.3)
            results: dict[str, Result] = {}
            started = time.perf_counter()
            for i in range(20):
                name = f"one-{i:02d}"
                try:
                    results[name] = await asyncio.wait_for(
                        client.jobs.create(project.id, _spec(name)), 30
                    )
                except Exception as exc:
                    results[name] = exc
            elapsed = time.perf_counter() - started
            stats = client.stats()
        await api.wait_for_commits(timeout=5)
        garbled = _garbled(api)
        creates = len(api.requests_for(Route.CREATE_JOB))
    print(
        f"\n20 creates, {garbled} garbled: {stats.adopted} adopted, "
        f"{sum(not isinstance(r, TrainingJob) for r in results.values())} errors, "
        f"{stats.resent} resent, {elapsed:.2f}s"
    )
    assert garbled > 0
    assert creates == 20  # no create was ever sent twice
    assert stats.resent == 0
    _account(api, project.id, results)


async def test_a_garbled_unnamed_create_is_raised_as_committed() -> None:
    async with FakeTrainingAPI(seed=22, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=2, retry_policy=FAST, commit_window=2
        ) as client:
            project = await client.projects.upsert("garbled-unnamed")
            for body in BODIES.values():
                api.inject("commit_then_garble", route=Route.CREATE_JOB, body=body, times=1)
                with pytest.raises(APIResponseValidationError) as info:
                    await asyncio.wait_for(
                        client.jobs.create(project.id, {"image": {"base_image": "x"}}), 10
                    )
                assert info.value.committed is True
                api.clear_faults()
        assert len(api.jobs) == len(BODIES) == len(api.requests_for(Route.CREATE_JOB))


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
@pytest.mark.parametrize("return_exceptions", [True, False])
async def test_create_many_accounts_for_every_spec(body: bytes, return_exceptions: bool) -> None:
    names = [f"many-{i:02d}" for i in range(60)]
    async with FakeTrainingAPI(seed=23, clock=FakeClock.real()) as api:
        async with AsyncTrainingClient(
            api.api_key, base_url=api.url, timeout=2, retry_policy=FAST, commit_window=2
        ) as client:
            project = await client.projects.upsert("garbled-many")
            api.inject("commit_then_garble", route=Route.CREATE_JOB, body=body, probability=0.3)
            started = time.perf_counter()
            specs = [_spec(n) for n in names]
            batch: Awaitable[Sequence[TrainingJob | BasetenError]] = (
                client.jobs.create_many(project.id, specs, concurrency=16)
                if return_exceptions
                else client.jobs.create_many(
                    project.id, specs, concurrency=16, return_exceptions=False
                )
            )
            outcome: Sequence[TrainingJob | BasetenError | None]
            try:
                outcome = await asyncio.wait_for(batch, 60)
            except CreateManyError as exc:
                outcome = exc.results
            elapsed = time.perf_counter() - started
            stats = client.stats()
        await api.wait_for_commits(timeout=5)
        garbled = _garbled(api)
        creates = len(api.requests_for(Route.CREATE_JOB))
    assert len(outcome) == len(names)
    attempted = {n: r for n, r in zip(names, outcome, strict=True) if r is not None}
    print(
        f"\ncreate_many 60 (return_exceptions={return_exceptions}), {garbled} garbled: "
        f"{sum(isinstance(r, TrainingJob) for r in attempted.values())} jobs, "
        f"{sum(not isinstance(r, TrainingJob) for r in attempted.values())} errors, "
        f"{len(names) - len(attempted)} never attempted, {stats.adopted} adopted, "
        f"{stats.resent} resent, {elapsed:.2f}s"
    )
    assert garbled > 0
    assert creates == len(attempted)  # one create per attempted name, none resent
    assert stats.resent == 0
    if return_exceptions:
        assert len(attempted) == len(names)
    _account(api, project.id, attempted)
