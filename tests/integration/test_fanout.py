"""create_many: bounded workers, input order, cancellation, several processes."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    BadRequestError,
    CreateManyError,
    InvalidInputError,
    TrainingJob,
)
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route
from tests.integration.conftest import FAST_RETRIES


def _client_tasks(*, count_body_writers: bool = True) -> int:
    """Tasks alive in this loop, less the fake server's (it shares the loop).

    aiohttp runs one short-lived task per request in flight to write its body;
    ``count_body_writers=False`` leaves those out to count the SDK's own tasks.
    """
    skipped = ["web_protocol.py", "web_server.py", "testing/_server.py"]
    if not count_body_writers:
        skipped.append("client_reqrep.py")
    count = 0
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is None or not code.co_filename.endswith(tuple(skipped)):
            count += 1
    return count


def _spec(name: str) -> dict[str, object]:
    return {"image": {"base_image": "hello-world"}, "name": name}


async def test_results_keep_input_order_and_failures_stay_in_their_slot(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("order")
    specs: list[object] = [_spec(f"n{i}") for i in range(20)]
    specs[5] = {"image": {"base_image": "x"}, "compute": {"node_count": 0}}
    specs[9] = _spec("n3")  # a repeated name cannot be reconciled: refused
    progress: list[tuple[int, int, int | None]] = []
    results = await client.jobs.create_many(
        project.id,
        specs,  # type: ignore[arg-type]
        concurrency=4,
        on_progress=lambda *counts: progress.append(counts),
    )
    assert isinstance(results[5], InvalidInputError)
    assert results[5].field == "spec.compute.node_count"
    assert isinstance(results[9], InvalidInputError)
    ok = [r for r in results if isinstance(r, TrainingJob)]
    assert [r.name for r in ok] == [f"n{i}" for i in range(20) if i not in (5, 9)]
    assert len(api.jobs) == 18
    assert progress[-1] == (18, 2, 20)
    assert len(progress) == 21  # one per spec, one at the end


async def test_return_exceptions_false_raises_the_first_failure(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("strict")
    api.inject("status", route=Route.CREATE_JOB, status=400, times=1)
    api.inject("latency", route=Route.CREATE_JOB, delay=0.05)
    reported: list[int] = []
    with pytest.raises(CreateManyError) as info:
        await client.jobs.create_many(
            project.id,
            [_spec(f"s{i}") for i in range(50)],
            concurrency=4,
            return_exceptions=False,
            on_progress=lambda done, failed, total: reported.append(done),
        )
    assert isinstance(info.value.__cause__, BadRequestError)
    assert _client_tasks() == 1
    # Creates in flight at the failure were allowed to finish, and none was lost:
    # every job on the server is in the error's results.
    assert sorted(job.id for job in info.value.jobs) == sorted(api.jobs)
    assert len(api.jobs) == max(reported)
    assert 1 <= len(api.jobs) < 49
    assert sum(isinstance(r, BadRequestError) for r in info.value.results) == 1


async def test_return_exceptions_false_returns_only_jobs(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("typed")
    jobs: list[TrainingJob] = await client.jobs.create_many(
        project.id, [_spec(f"t{i}") for i in range(5)], return_exceptions=False
    )
    assert [job.name for job in jobs] == [f"t{i}" for i in range(5)]


async def test_a_raising_progress_callback_loses_no_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("callback")
    api.inject("latency", route=Route.CREATE_JOB, delay=0.05)

    def on_progress(done: int, failed: int, total: int | None) -> None:
        if done == 10:
            raise RuntimeError("dashboard down")

    with pytest.raises(CreateManyError) as info:
        await client.jobs.create_many(
            project.id, [_spec(f"c{i}") for i in range(60)], concurrency=8, on_progress=on_progress
        )
    assert isinstance(info.value.__cause__, RuntimeError)
    # The creates in flight when the callback raised finished, and all are reported.
    assert len(api.jobs) >= 10
    assert sorted(job.id for job in info.value.jobs) == sorted(api.jobs)


async def test_a_raising_spec_iterator_loses_no_job(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("iterator")
    api.inject("latency", route=Route.CREATE_JOB, delay=0.05)

    def specs() -> Iterator[dict[str, object]]:
        for i in range(12):
            yield _spec(f"i{i}")
        raise OSError("spec file truncated")

    with pytest.raises(CreateManyError) as info:
        await client.jobs.create_many(project.id, specs(), concurrency=8)
    assert isinstance(info.value.__cause__, OSError)
    assert len(api.jobs) == 12
    assert sorted(job.id for job in info.value.jobs) == sorted(api.jobs)


async def test_async_iterable_input_and_bad_concurrency(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project = await client.projects.upsert("aiter")

    async def specs() -> AsyncIterator[dict[str, object]]:
        for i in range(10):
            await asyncio.sleep(0)
            yield _spec(f"a{i}")

    results = await client.jobs.create_many(project.id, specs(), concurrency=3)
    assert [r.name for r in results if isinstance(r, TrainingJob)] == [f"a{i}" for i in range(10)]
    with pytest.raises(InvalidInputError, match="concurrency"):
        await client.jobs.create_many(project.id, [], concurrency=0)
    assert await client.jobs.create_many(project.id, [], concurrency=2) == []


@pytest.mark.slow
async def test_10000_specs_never_hold_more_than_concurrency_tasks() -> None:
    async with FakeTrainingAPI(seed=1, request_log_limit=100) as api:
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
            project = await client.projects.upsert("many")
            baseline = _client_tasks(count_body_writers=False)
            peak = peak_with_writers = 0
            pulled = 0

            def specs() -> Iterator[dict[str, object]]:
                nonlocal peak, peak_with_writers, pulled
                for _ in range(10_000):
                    pulled += 1
                    peak = max(peak, _client_tasks(count_body_writers=False) - baseline)
                    peak_with_writers = max(peak_with_writers, _client_tasks() - baseline)
                    yield {"image": {"base_image": "x"}}

            results = await client.jobs.create_many(project.id, specs(), concurrency=32)
    assert pulled == 10_000
    assert len(results) == 10_000
    assert all(isinstance(r, TrainingJob) for r in results)
    print(
        f"\npeak tasks alive during create_many(concurrency=32): {peak} of the SDK's, "
        f"{peak_with_writers} with aiohttp's per-request body writers"
    )
    assert peak <= 32 + 2
    assert peak_with_writers <= 2 * 32 + 2


async def test_cancelling_create_many_leaves_nothing_behind() -> None:
    async with FakeTrainingAPI(seed=4) as api:
        api.inject("latency", route=Route.CREATE_JOB, delay=0.01)
        client = AsyncTrainingClient(api.api_key, base_url=api.url, retry_policy=FAST_RETRIES)
        project = await client.projects.upsert("cancel")
        hundred_done = asyncio.Event()

        def count(ok: int, failed: int, total: int | None) -> None:
            if ok >= 100:
                hundred_done.set()

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run = asyncio.create_task(
                client.jobs.create_many(
                    project.id,
                    (_spec(f"c{i}") for i in range(500)),
                    concurrency=16,
                    on_progress=count,
                )
            )
            await asyncio.wait_for(hundred_done.wait(), timeout=30)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            assert _client_tasks() == 1
            assert client.stats().in_flight == 0
            created = len(api.jobs)
            assert 100 <= created < 500
            await asyncio.sleep(0.05)  # in-flight requests were cancelled, not finished
            assert len(api.jobs) <= created + 16
            # The same client keeps working.
            again = await client.jobs.create_many(project.id, [_spec("after")], concurrency=1)
            assert isinstance(again[0], TrainingJob)
            await client.aclose()
        gc.collect()


_WORKER = """
import asyncio, os, sys
from baseten_training_async import AsyncTrainingClient, RetryPolicy, TrainingJob

async def main() -> None:
    first, last = int(sys.argv[1]), int(sys.argv[2])
    policy = RetryPolicy(max_retries=8, initial_backoff=0.02, max_backoff=0.2)
    async with AsyncTrainingClient(base_url=os.environ["FAKE_URL"], retry_policy=policy,
                                   timeout=2) as client:
        specs = ({"image": {"base_image": "x"}, "name": f"job-{i:04d}"}
                 for i in range(first, last))
        results = await client.jobs.create_many(os.environ["PROJECT"], specs, concurrency=16,
                                                adopt_existing=True)
        bad = [r for r in results if not isinstance(r, TrainingJob)]
        print(len(results), len(bad))
        sys.exit(1 if bad else 0)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_several_processes_split_one_batch_exactly_once() -> None:
    async with FakeTrainingAPI(seed=9, clock=FakeClock.real()) as api:
        api.inject("drop_after_commit", route=Route.CREATE_JOB, probability=0.05)
        api.inject("status", route=Route.CREATE_JOB, status=503, probability=0.05)
        project = api.add_project("shared")
        env = {
            **os.environ,
            "FAKE_URL": api.url,
            "BASETEN_API_KEY": api.api_key,
            "PROJECT": project.id,
        }
        # Three processes take disjoint slices; a fourth re-runs an overlapping
        # slice, as a restarted worker would, and adopts what already exists.
        slices = [(0, 200), (200, 400), (400, 600), (150, 450)]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _WORKER,
                str(a),
                str(b),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for a, b in slices[:3]
        ]
        outputs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in procs]
        rerun = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            *map(str, slices[3]),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        outputs.append(await asyncio.wait_for(rerun.communicate(), timeout=120))
        for (_out, err), proc in zip(outputs, [*procs, rerun], strict=True):
            assert proc.returncode == 0, err.decode()[-2000:]
        names = Counter(job.spec["name"] for job in api.jobs.values())
        assert len(names) == 600
        assert set(names.values()) == {1}
        assert api.stats.injected  # faults really happened
