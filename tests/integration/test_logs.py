"""Log paging: nothing lost, nothing repeated, over any range."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from baseten_training_async import AsyncTrainingClient, JobStatus
from baseten_training_async._wire import LOG_PAGE_LIMIT
from baseten_training_async.testing import FakeTrainingAPI, JobTimings, LogLine, Route

MS = 1_000_000
DAY_MS = 24 * 3600 * 1000


async def _job(api: FakeTrainingAPI, client: AsyncTrainingClient) -> tuple[str, str]:
    project = await client.projects.upsert("logs")
    job = await client.jobs.create(project.id, {"image": {"base_image": "x"}})
    return project.id, job.id


def _five_thousand_lines(start_ms: int) -> list[LogLine]:
    rng = random.Random(3)
    lines: list[LogLine] = []
    # 1,999 lines over the first day, then 1,500 inside one millisecond, placed so
    # that a 1,000-line page boundary falls inside it.
    first_day = sorted(rng.sample(range(1, DAY_MS // 10), 1_999))
    lines += [
        LogLine(start_ms * MS + t * 10 * MS + 7, f"a{i}", "INFO", "0")
        for i, t in enumerate(first_day)
    ]
    burst_ms = start_ms + DAY_MS
    lines += [
        LogLine(burst_ms * MS + i * 500, f"burst{i}", "DEBUG", str(i % 4)) for i in range(1_500)
    ]
    # A 3-day gap with no logs, then 1,501 lines spread over ten more days, so the
    # walk needs three 7-day windows.
    later_start = burst_ms + 4 * DAY_MS
    later = sorted(rng.sample(range(0, 10 * DAY_MS), 1_501))
    lines += [LogLine((later_start + t) * MS + 3, f"c{i}", None, "1") for i, t in enumerate(later)]
    assert len(lines) == 5_000
    return lines


async def test_5000_lines_three_windows_burst_and_gap(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project_id, job_id = await _job(api, client)
    start_ms = api.clock.now_ms() - 20 * DAY_MS
    expected = _five_thousand_lines(start_ms)
    api.set_logs(job_id, expected)
    end_ms = start_ms + 17 * DAY_MS

    got = [line async for line in client.jobs.logs(project_id, job_id, start=start_ms, end=end_ms)]

    assert [line.message for line in got] == [line.message for line in expected]
    assert [int(line.timestamp) for line in got] == [line.timestamp_ns for line in expected]
    requests = api.requests_for(Route.GET_LOGS)
    assert all(int(r.query["limit"]) <= LOG_PAGE_LIMIT for r in requests)
    spans = [
        int(r.query["end_epoch_millis"]) - int(r.query["start_epoch_millis"]) for r in requests
    ]
    assert max(spans) <= 7 * DAY_MS
    # One request per page or window, plus one to finish the burst millisecond.
    assert len(requests) <= 12, len(requests)


async def test_empty_windows_do_not_end_the_walk(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project_id, job_id = await _job(api, client)
    start_ms = api.clock.now_ms() - 30 * DAY_MS
    late = [LogLine((start_ms + 22 * DAY_MS) * MS + i, f"late{i}", "INFO", None) for i in range(3)]
    api.set_logs(job_id, late)
    got = [
        line.message
        async for line in client.jobs.logs(
            project_id, job_id, start=start_ms, end=start_ms + 29 * DAY_MS
        )
    ]
    assert got == ["late0", "late1", "late2"]


async def test_identical_lines_are_not_collapsed(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project_id, job_id = await _job(api, client)
    start_ms = api.clock.now_ms() - DAY_MS
    # 900 distinct lines, then 300 identical ones in the millisecond where the
    # first page ends: the re-read must skip the 100 already yielded, no more.
    distinct = [LogLine((start_ms + 1) * MS + i, f"d{i}", "INFO", "0") for i in range(900)]
    same = [LogLine((start_ms + 5) * MS, "dup", "INFO", "0") for _ in range(300)]
    api.set_logs(job_id, distinct + same)
    got = [
        line.message
        async for line in client.jobs.logs(project_id, job_id, start=start_ms, end=start_ms + 10)
    ]
    assert got == [f"d{i}" for i in range(900)] + ["dup"] * 300


async def test_min_level_and_default_range(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project_id, job_id = await _job(api, client)
    now_ms = api.clock.now_ms()
    api.set_logs(
        job_id,
        [
            LogLine((now_ms + 1) * MS, "debug", "DEBUG", None),
            LogLine((now_ms + 2) * MS, "info", "INFO", None),
            LogLine((now_ms + 3) * MS, "none", None, None),
            LogLine((now_ms + 4) * MS, "error", "ERROR", None),
        ],
    )
    api.clock.advance(60)
    # No start or end: from the job's creation to "now" on the server's clock.
    everything = [line.message async for line in client.jobs.logs(project_id, job_id)]
    assert everything == ["debug", "info", "none", "error"]
    warnings_up = [
        line.message async for line in client.jobs.logs(project_id, job_id, min_level="WARNING")
    ]
    assert warnings_up == ["error"]


async def test_follow_tails_until_the_job_completes() -> None:
    timings = JobTimings(created=0.05, deploying=0.05, running=0.6)
    async with FakeTrainingAPI(seed=3, timings=timings, log_every=0.02) as api:
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
            project_id, job_id = await _job(api, client)
            ticking = asyncio.create_task(_tick(api, 0.02))
            try:
                got = [
                    line
                    async for line in client.jobs.logs(
                        project_id, job_id, follow=True, poll_interval=0.02
                    )
                ]
            finally:
                ticking.cancel()
            assert api.job_status(job_id) == JobStatus.COMPLETED
            expected = api.logs(job_id)
            assert [line.message for line in got] == [line.message for line in expected]
            assert len(got) > 20
            assert len({(line.timestamp, line.message) for line in got}) == len(got)


async def _tick(api: FakeTrainingAPI, step: float) -> None:
    while True:
        await asyncio.sleep(step)
        api.clock.advance(step)


async def test_a_full_page_in_the_last_millisecond_ends_cleanly(
    api: FakeTrainingAPI, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    project_id, job_id = await _job(api, client)
    end_ms = api.clock.now_ms() - 1000
    lines = [LogLine(end_ms * MS + i, f"last{i}", "INFO", None) for i in range(1_200)]
    api.set_logs(job_id, lines)
    with caplog.at_level(logging.WARNING, logger="baseten_training_async"):
        got = [
            line.message
            async for line in client.jobs.logs(project_id, job_id, start=end_ms - 5, end=end_ms)
        ]
    assert got == [f"last{i}" for i in range(1_200)]
    assert "may be missing" not in caplog.text  # the two reads overlapped: nothing lost


async def test_more_than_two_pages_in_one_millisecond_is_reported(
    api: FakeTrainingAPI, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    project_id, job_id = await _job(api, client)
    at_ms = api.clock.now_ms() - 1000
    api.set_logs(job_id, [LogLine(at_ms * MS + i, f"x{i}", None, None) for i in range(2_500)])
    with caplog.at_level(logging.WARNING, logger="baseten_training_async"):
        got = [
            line.message
            async for line in client.jobs.logs(project_id, job_id, start=at_ms, end=at_ms + 1)
        ]
    assert got == [f"x{i}" for i in range(1000)] + [f"x{i}" for i in range(1500, 2500)]
    assert "may be missing" in caplog.text


async def test_following_a_job_older_than_a_week_walks_its_history(
    api: FakeTrainingAPI, client: AsyncTrainingClient
) -> None:
    project_id, job_id = await _job(api, client)
    created_ms = api.clock.now_ms()
    api.set_logs(
        job_id,
        [
            LogLine((created_ms + DAY_MS) * MS, "day 1", "INFO", None),
            LogLine((created_ms + 9 * DAY_MS) * MS, "day 9", "INFO", None),
        ],
    )
    api.clock.advance(10 * 24 * 3600)
    api.force_status(job_id, JobStatus.COMPLETED)
    got = [
        line.message
        async for line in client.jobs.logs(project_id, job_id, follow=True, poll_interval=0.01)
    ]
    assert got == ["day 1", "day 9"]
