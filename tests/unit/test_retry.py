"""Every row of the retry table, through the aiohttp transport, on a virtual clock."""

from __future__ import annotations

import asyncio
import logging
import re
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from baseten_training_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncTrainingClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FlowControl,
    HTTPRequest,
    HTTPResponse,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryBudget,
    RetryBudgetExhaustedError,
    RetryPolicy,
    TrainingJob,
    TrainingProject,
    UnprocessableEntityError,
)
from baseten_training_async.testing import MockTransport, VirtualClock, json_response
from tests.conftest import BASE, KEY, job_json, project_json

PROJECTS = f"{BASE}/v1/training_projects"
JOBS = f"{BASE}/v1/training_projects/proj1/jobs"


def _connect_error() -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="api.test", port=443, ssl=True)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))  # type: ignore[arg-type]


def _calls(mocked: aioresponses, method: str, url: str) -> int:
    return sum(
        len(calls)
        for (m, u), calls in mocked.requests.items()
        if m == method and str(u).split("?")[0] == url
    )


async def _list_projects(client: AsyncTrainingClient) -> list[TrainingProject]:
    return await client.projects.list()


async def _create_unnamed(client: AsyncTrainingClient) -> TrainingJob:
    return await client.jobs.create("proj1", {"image": {"base_image": "x"}})


SUCCESS_LIST = {"training_projects": [project_json()]}
SUCCESS_JOB = {"training_job": job_json()}

# status, retried when the call is not idempotent? (reads retry every 5xx)
STATUS_ROWS: list[tuple[int, bool]] = [
    (429, True),
    (503, True),
    (500, False),
    (502, False),
    (504, False),
]
READ_ONLY_ROWS: list[tuple[int, bool]] = [(520, False), (522, False), (524, False)]


@pytest.mark.parametrize(("status", "retried_when_not_idempotent"), STATUS_ROWS + READ_ONLY_ROWS)
async def test_retryable_statuses_on_idempotent_calls(
    client: AsyncTrainingClient,
    mocked: aioresponses,
    clock: VirtualClock,
    status: int,
    retried_when_not_idempotent: bool,
) -> None:
    mocked.get(PROJECTS, status=status, payload={"message": "busy"})
    mocked.get(PROJECTS, status=status, payload={"message": "busy"})
    mocked.get(PROJECTS, payload=SUCCESS_LIST)
    projects = await client.projects.list()
    assert [p.id for p in projects] == ["proj1"]
    assert _calls(mocked, "GET", PROJECTS) == 3
    if status == 429:
        # Backoff waits, plus the client-wide gate and pacing that a 429 turns on.
        assert len(clock.sleeps) >= 2
        assert client.flow_control.rate_limited == 2
        assert client.flow_control.pace is None  # two 429s are too few to pace on
    else:
        assert len(clock.sleeps) == 2
        assert client.flow_control.pace is None


@pytest.mark.parametrize(("status", "retried_when_not_idempotent"), STATUS_ROWS)
async def test_statuses_on_create(
    client: AsyncTrainingClient,
    mocked: aioresponses,
    clock: VirtualClock,
    status: int,
    retried_when_not_idempotent: bool,
) -> None:
    mocked.post(JOBS, status=status, payload={"message": "busy"})
    mocked.post(JOBS, payload=SUCCESS_JOB)
    if retried_when_not_idempotent:
        job = await client.jobs.create("proj1", {"image": {"base_image": "x"}})
        assert job.id == "job1"
        assert _calls(mocked, "POST", JOBS) == 2
    else:
        # 500/502/504 on a create: the job may exist; an unnamed spec cannot be
        # looked up, so the SDK refuses to guess and does not resend.
        with pytest.raises(APIConnectionError) as info:
            await client.jobs.create("proj1", {"image": {"base_image": "x"}})
        assert info.value.maybe_committed is True
        assert isinstance(info.value.__cause__, InternalServerError)
        assert info.value.spec is not None
        assert _calls(mocked, "POST", JOBS) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (418, APIStatusError),
    ],
)
@pytest.mark.parametrize("call", [_list_projects, _create_unnamed])
async def test_client_errors_are_never_retried(
    client: AsyncTrainingClient,
    mocked: aioresponses,
    clock: VirtualClock,
    status: int,
    error: type[APIStatusError],
    call: Any,
) -> None:
    mocked.get(PROJECTS, status=status, payload={"message": "nope"}, repeat=True)
    mocked.post(JOBS, status=status, payload={"message": "nope"}, repeat=True)
    with pytest.raises(error) as info:
        await call(client)
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.message == "nope"
    assert clock.sleeps == []
    assert _calls(mocked, "GET", PROJECTS) + _calls(mocked, "POST", JOBS) == 1


async def test_persistent_failure_stops_after_max_retries(
    client: AsyncTrainingClient, mocked: aioresponses, clock: VirtualClock
) -> None:
    mocked.get(PROJECTS, status=503, payload={"message": "down"}, repeat=True)
    with pytest.raises(InternalServerError) as info:
        await client.projects.list()
    assert info.value.status_code == 503
    assert _calls(mocked, "GET", PROJECTS) == 4  # 1 + max_retries=3
    assert len(clock.sleeps) == 3


async def test_max_retries_zero_disables_retrying(mocked: aioresponses) -> None:
    clock = VirtualClock()
    async with AsyncTrainingClient(
        KEY, base_url=BASE, retry_policy=RetryPolicy(max_retries=0), clock=clock
    ) as client:
        mocked.get(PROJECTS, status=503, repeat=True)
        with pytest.raises(InternalServerError):
            await client.projects.list()
    assert _calls(mocked, "GET", PROJECTS) == 1
    assert clock.sleeps == []


async def test_max_retries_argument_sets_the_policy(mocked: aioresponses) -> None:
    async with AsyncTrainingClient(KEY, base_url=BASE, max_retries=0) as client:
        assert client.retry_policy.max_retries == 0
        mocked.get(PROJECTS, status=502, repeat=True)
        with pytest.raises(InternalServerError):
            await client.projects.list()
    assert _calls(mocked, "GET", PROJECTS) == 1


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "3"}, {"error": "slow down"}, 3.0),
        ({}, {"error": "slow down", "retry_after": 37}, 37.0),
        ({"Retry-After": "5"}, {"error": "slow down", "retry_after": 2.5}, 2.5),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, {"error": "x"}, 0.0),
    ],
)
async def test_429_waits_as_the_server_says(
    client: AsyncTrainingClient,
    mocked: aioresponses,
    clock: VirtualClock,
    headers: dict[str, str],
    body: dict[str, object],
    expected: float,
) -> None:
    mocked.get(PROJECTS, status=429, payload=body, headers=headers)
    mocked.get(PROJECTS, payload=SUCCESS_LIST)
    await client.projects.list()
    # The retry's own wait, then the client-wide gate sees it has passed.
    assert clock.sleeps[0] == pytest.approx(expected)


async def test_retry_after_is_capped(mocked: aioresponses) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=1, max_retry_after=10.0)
    async with AsyncTrainingClient(KEY, base_url=BASE, retry_policy=policy, clock=clock) as client:
        mocked.get(PROJECTS, status=429, payload={"retry_after": 3600})
        mocked.get(PROJECTS, payload=SUCCESS_LIST)
        await client.projects.list()
    assert clock.sleeps[0] == 10.0


async def test_backoff_is_full_jitter_exponential_and_capped(mocked: aioresponses) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=6, initial_backoff=1.0, max_backoff=4.0)
    async with AsyncTrainingClient(KEY, base_url=BASE, retry_policy=policy, clock=clock) as client:
        mocked.get(PROJECTS, status=502, repeat=True)
        with pytest.raises(InternalServerError):
            await client.projects.list()
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == len(ceilings)
    for waited, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert 0.0 <= waited <= ceiling


async def test_deadline_bounds_all_attempts(mocked: aioresponses) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=10, deadline=5.0)
    async with AsyncTrainingClient(KEY, base_url=BASE, retry_policy=policy, clock=clock) as client:
        mocked.get(PROJECTS, status=429, payload={"retry_after": 3}, repeat=True)
        with pytest.raises(RateLimitError) as info:
            await client.projects.list()
    assert info.value.retry_after == 3.0
    # 3 s fits in the 5 s deadline; a second 3 s wait would pass it.
    retry_waits = [s for s in clock.sleeps if s == 3.0]
    assert len(retry_waits) == 1
    assert _calls(mocked, "GET", PROJECTS) == 2


@pytest.mark.parametrize(
    ("exception", "idempotent_retried", "create_retried"),
    [
        (_connect_error(), True, True),
        (aiohttp.ServerDisconnectedError(), True, False),
        (TimeoutError(), True, False),
        (aiohttp.ClientPayloadError("truncated"), True, False),
    ],
)
async def test_transport_failures(
    client: AsyncTrainingClient,
    mocked: aioresponses,
    exception: Exception,
    idempotent_retried: bool,
    create_retried: bool,
) -> None:
    mocked.get(PROJECTS, exception=exception)
    mocked.get(PROJECTS, payload=SUCCESS_LIST)
    assert idempotent_retried
    assert len(await client.projects.list()) == 1
    assert _calls(mocked, "GET", PROJECTS) == 2

    mocked.post(JOBS, exception=exception)
    mocked.post(JOBS, payload=SUCCESS_JOB)
    if create_retried:
        assert (await _create_unnamed(client)).id == "job1"
        assert _calls(mocked, "POST", JOBS) == 2
    else:
        with pytest.raises(APIConnectionError) as info:
            await _create_unnamed(client)
        assert info.value.maybe_committed is True
        assert _calls(mocked, "POST", JOBS) == 1


async def test_timeouts_raise_api_timeout_error(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    mocked.get(f"{PROJECTS}/p1", exception=TimeoutError(), repeat=True)
    with pytest.raises(APITimeoutError) as info:
        await client.projects.retrieve("p1")
    # A read cannot have taken effect, so it does not say it may have.
    assert info.value.maybe_committed is False
    assert not isinstance(info.value.__cause__, APITimeoutError)


async def test_a_timed_out_write_may_have_taken_effect(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    mocked.delete(f"{PROJECTS}/p1", exception=TimeoutError(), repeat=True)
    with pytest.raises(APITimeoutError) as info:
        await client.projects.delete("p1")
    assert info.value.maybe_committed is True
    assert _calls(mocked, "DELETE", f"{PROJECTS}/p1") == 1


async def test_retries_are_logged_without_the_key(
    client: AsyncTrainingClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(PROJECTS, status=503, payload={"message": "down"})
    mocked.get(PROJECTS, payload=SUCCESS_LIST)
    with caplog.at_level(logging.DEBUG, logger="baseten_training_async"):
        await client.projects.list()
    records = [r for r in caplog.records if r.name == "baseten_training_async"]
    info = [r for r in records if r.levelno == logging.INFO]
    assert len(info) == 1
    text = info[0].getMessage()
    assert re.search(r"retrying GET /v1/training_projects: attempt 1 failed .*503", text)
    assert "next attempt in" in text
    # DEBUG: a request and a response line per attempt.
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert len(debug) == 4
    assert re.fullmatch(r"response GET /v1/training_projects 503 in \S+s \(attempt 1, .*", debug[1])
    assert KEY not in caplog.text


async def test_retry_budget_stops_a_storm(mocked: aioresponses) -> None:
    clock = VirtualClock()
    budget = RetryBudget(capacity=3, refill_per_success=0.5)
    policy = RetryPolicy(max_retries=5)
    async with AsyncTrainingClient(
        KEY, base_url=BASE, retry_policy=policy, retry_budget=budget, clock=clock
    ) as client:
        mocked.get(PROJECTS, status=502, repeat=True)
        with pytest.raises(RetryBudgetExhaustedError, match="retry budget") as info:
            await client.projects.list()  # 3 retries spend the budget; the 4th is refused
        # The error keeps its branch of the tree: still the 502 it was.
        assert isinstance(info.value, InternalServerError)
        assert info.value.status_code == 502
        assert any("retry budget" in note for note in info.value.__notes__)
        assert isinstance(info.value.__cause__, InternalServerError)
        with pytest.raises(RetryBudgetExhaustedError) as again:
            await client.projects.list()  # fails fast: no token left
        assert isinstance(again.value, InternalServerError)
    assert _calls(mocked, "GET", PROJECTS) == 4 + 1
    assert budget.spent == 3
    assert budget.refused == 2


async def test_successes_refill_the_retry_budget(mocked: aioresponses) -> None:
    budget = RetryBudget(capacity=2, refill_per_success=0.5)
    async with AsyncTrainingClient(
        KEY, base_url=BASE, retry_budget=budget, clock=VirtualClock()
    ) as client:
        budget.tokens = 0.0
        mocked.get(PROJECTS, payload=SUCCESS_LIST, repeat=True)
        for _ in range(3):
            await client.projects.list()
    assert budget.tokens == 1.5


async def test_pacing_follows_aimd() -> None:
    clock = VirtualClock(start=100.0)
    flow = FlowControl(max_concurrency=4, budget=RetryBudget(), clock=clock)
    flow.record_success()
    clock.advance(0.5)
    for _ in range(59):
        flow.record_success()
    for _ in range(5):
        flow.record_rate_limited(0.5)
    assert flow.pace is None  # 5 of 65: an occasional 429, not a limit
    # But the gate holds until 100.5 + 0.5: a call that cannot wait is refused at once.
    with pytest.raises(RateLimitError) as info:
        await flow.acquire(deadline=clock.monotonic())
    assert info.value.retry_after == pytest.approx(0.5)
    assert clock.sleeps == []
    flow.record_rate_limited(0.5)
    flow.record_rate_limited(0.5)
    # 7 of 67 (over 10%): pace at 95% of the 60 successes the server allowed in
    # the last second.
    assert flow.pace == pytest.approx(60 * 0.95)
    flow.record_rate_limited(0.5)
    assert flow.pace == pytest.approx(57.0)  # same burst: no second decrease
    before = flow.pace
    assert before is not None
    flow.record_success()
    assert flow.pace == pytest.approx(before + 1 / before)  # additive increase
    clock.advance(1.0)
    for _ in range(45):
        flow.record_success()
    recovered = flow.pace
    assert recovered is not None
    for _ in range(6):
        flow.record_rate_limited(0.5)
    assert flow.pace == pytest.approx(recovered * 0.8)  # one decrease for the burst
    clock.advance(31.0)
    flow.record_success()
    assert flow.pace is None
    flow.shared_backoff = False
    flow.record_rate_limited(5)
    assert flow.pace is None
    assert flow.rate_limited == 15


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)


@pytest.mark.parametrize("failure", [asyncio.CancelledError, ValueError])
async def test_cancellation_and_foreign_errors_are_never_retried(
    failure: type[BaseException],
) -> None:
    def handler(request: HTTPRequest) -> HTTPResponse:
        raise failure()

    transport = MockTransport(handler)
    clock = VirtualClock()
    async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport, clock=clock) as client:
        with pytest.raises(failure):
            await client.projects.list()
    assert len(transport.requests) == 1
    assert clock.sleeps == []


async def test_a_huge_retry_after_is_capped_for_the_whole_client(mocked: aioresponses) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_retries=1, max_retry_after=5.0)
    async with AsyncTrainingClient(KEY, base_url=BASE, retry_policy=policy, clock=clock) as client:
        mocked.get(PROJECTS, status=429, payload={"retry_after": 3600})
        mocked.get(PROJECTS, payload=SUCCESS_LIST)
        await client.projects.list()
    assert clock.sleeps
    assert max(clock.sleeps) <= 5.0 * 1.2 + 1e-9  # the retry's wait and the gate's, jittered


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (None, {"retry_after": 10**400}),
        ("inf", None),
        ("nan", {}),
        ("-5", None),
        (None, {"retry_after": True}),
    ],
)
async def test_nonsense_retry_after_values_are_ignored(header: str | None, body: object) -> None:
    # A huge integer is sent as the digits a server would write.
    raw = b'{"retry_after": 1' + b"0" * 400 + b"}" if body == {"retry_after": 10**400} else body
    headers = {} if header is None else {"Retry-After": header}
    transport = MockTransport(lambda request: json_response(429, raw, headers))
    async with AsyncTrainingClient(
        KEY, base_url=BASE, transport=transport, max_retries=0, clock=VirtualClock()
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.projects.list()
    assert info.value.retry_after is None


async def test_the_budget_is_not_spent_on_a_retry_that_will_not_happen(
    mocked: aioresponses,
) -> None:
    clock = VirtualClock()
    budget = RetryBudget(capacity=10)
    policy = RetryPolicy(max_retries=2)
    async with AsyncTrainingClient(
        KEY, base_url=BASE, retry_policy=policy, retry_budget=budget, clock=clock
    ) as client:
        mocked.get(PROJECTS, status=502, repeat=True)
        with pytest.raises(InternalServerError):
            await client.projects.list()
    assert budget.spent == 2
    assert len(clock.sleeps) == 2
    assert _calls(mocked, "GET", PROJECTS) == 3
