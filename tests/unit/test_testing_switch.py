"""The testing switch runs long waits in no time, without hot loops (issue: one clock).

A 30-minute ``wait()``, a 15-second reconciliation settle and a log follow each run
their whole schedule under `fake_time`; the request counts prove each waited the
intervals it should have (a hot loop would make thousands of requests).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    HTTPRequest,
    HTTPResponse,
    InternalServerError,
    WaitTimeoutError,
)
from baseten_training_async.testing import MockTransport, fake_time, json_response
from tests.conftest import BASE, KEY, job_json

JOB_PATH = "/v1/training_projects/proj1/jobs/job1"
STARTED = datetime.now(UTC).isoformat()  # the job began now: no history to catch up on


def _count(transport: MockTransport, method: str, suffix: str) -> int:
    return sum(1 for r in transport.requests if r.method == method and r.url.endswith(suffix))


async def test_long_waits_run_in_no_time_with_bounded_requests() -> None:
    polls = 0
    created = False

    def handler(request: HTTPRequest) -> HTTPResponse:
        nonlocal polls, created
        path = request.url.removeprefix(BASE)
        if request.method == "GET" and path == JOB_PATH:
            polls += 1
            # RUNNING for the first 200 polls of the follow, then done.
            status = "TRAINING_JOB_RUNNING" if polls < 200 else "TRAINING_JOB_COMPLETED"
            job = job_json(status=status, created_at=STARTED)
            return json_response(200, {"training_job": job}, {"Date": _http_now()})
        if path.endswith("/logs"):
            return json_response(200, {"logs": []})
        if request.method == "POST" and path.endswith("/jobs"):
            if not created:
                created = True
                return json_response(504, {"message": "gateway timeout"})
            return json_response(200, {"training_job": job_json("job2", name="settle")})
        if request.method == "GET" and path.endswith("/jobs"):
            listed = [job_json("job2", name="settle")] if created and polls > 10**6 else []
            return json_response(200, {"training_jobs": listed}, {"Date": _http_now()})
        raise AssertionError(f"unexpected {request.method} {path}")

    transport = MockTransport(handler)
    started = time.perf_counter()
    with fake_time() as clock:
        async with AsyncTrainingClient(
            KEY, base_url=BASE, transport=transport, commit_window=15.0
        ) as client:
            # 1. A 30-minute wait on a job that never finishes: one GET per 10 s.
            with pytest.raises(WaitTimeoutError):
                await client.jobs.wait("proj1", "job1", timeout=1800, poll_interval=10)
            waits = _count(transport, "GET", JOB_PATH)

            # 2. A create whose outcome is unknown (504), never listed: looked for for
            # the whole 15 s window, resent, then watched for one more window.
            before = clock.monotonic()
            job = await client.jobs.create(
                "proj1", {"name": "settle", "image": {"base_image": "x"}}
            )
            settle_seconds = clock.monotonic() - before
            listings = client.stats().listings

            # 3. A log follow of a job that runs 200 more polls at 2 s.
            polls = 0
            lines = await client.jobs.logs("proj1", "job1", follow=True, poll_interval=2.0)
            follow_logs = _count(transport, "GET", "/logs")
    elapsed = time.perf_counter() - started
    print(
        f"\nunder fake_time: 30-min wait {waits} GETs; 15-s settle {listings} listings over "
        f"{settle_seconds:.1f} fake s; follow {follow_logs} log pages; {elapsed:.3f}s of wall time"
    )
    assert waits in (180, 181)
    assert job.id == "job2"
    assert client.stats().resent == 1
    assert settle_seconds >= 30.0  # the settle window and the watch after the resend
    assert 10 <= listings <= 40
    assert lines == []
    assert 195 <= follow_logs <= 210
    assert elapsed < 10  # generous: the point is the counts, not the speed


def _http_now() -> str:
    from email.utils import formatdate

    return formatdate(usegmt=True)


async def test_an_ambiguous_create_without_the_switch_is_bounded_too() -> None:
    # With an injected clock, the same settle makes the same handful of listings.
    transport = MockTransport(lambda request: json_response(502, {"message": "bad gateway"}))
    with fake_time():
        async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport) as client:
            with pytest.raises(InternalServerError):
                await client.jobs.list("proj1")
    assert len(transport.requests) == 5  # the first attempt and 4 retries, no more


def test_no_test_reaches_into_private_state_of_the_sdk() -> None:
    """Tests use the public API, never a private attribute of a client or transport."""
    pattern = re.compile(r"\b(client|transport|flow_control|api|clock|view|fast)\._[a-z]")
    offenders = []
    tests = Path(__file__).parents[1]
    for path in tests.rglob("*.py"):
        if path.is_relative_to(tests / "conformance"):
            continue  # drives the official clients, whose internals are not ours
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
