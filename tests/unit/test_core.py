"""The request core through the public client and `MockTransport`: no sockets, no waiting."""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import pytest

from baseten_training_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncPager,
    AsyncTrainingClient,
    BadRequestError,
    BasetenError,
    HTTPRequest,
    HTTPResponse,
    InternalServerError,
    InvalidInputError,
    LogLine,
    RateLimitError,
    RetryBudget,
    RetryBudgetExhaustedError,
    RetryPolicy,
    TrainingJob,
)
from baseten_training_async.testing import MockTransport, VirtualClock, json_response
from tests.conftest import BASE, KEY, job_json

JOB_PATH = "/v1/training_projects/proj1/jobs/job1"

Outcome = HTTPResponse | BaseException


class Script:
    """A handler that plays ``outcomes`` in order (raising exceptions), then ``then`` forever."""

    def __init__(self, outcomes: Sequence[Outcome], then: HTTPResponse) -> None:
        self.outcomes = list(outcomes)
        self.then = then

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        outcome = self.outcomes.pop(0) if self.outcomes else self.then
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _job(status: str = "TRAINING_JOB_RUNNING") -> HTTPResponse:
    return json_response(200, {"training_job": job_json(status=status)})


def _client(
    handler: Callable[[HTTPRequest], HTTPResponse], clock: VirtualClock, **options: Any
) -> tuple[AsyncTrainingClient, MockTransport]:
    transport = MockTransport(handler)
    client = AsyncTrainingClient(KEY, base_url=BASE, transport=transport, clock=clock, **options)
    return client, transport


# --------------------------------------------------------------------------- the retry table


def _status(status: int) -> HTTPResponse:
    return json_response(status, {"message": f"failure {status}"})


# failure, retried on an idempotent call, retried on a non-idempotent call
RETRY_TABLE: list[tuple[str, Callable[[], Outcome], bool, bool]] = [
    ("429", lambda: json_response(429, {"error": "slow down", "retry_after": 2}), True, True),
    ("503", lambda: _status(503), True, True),
    ("500", lambda: _status(500), True, False),
    ("502", lambda: _status(502), True, False),
    ("504", lambda: _status(504), True, False),
    ("520", lambda: _status(520), True, False),
    ("524", lambda: _status(524), True, False),
    ("connect-error", lambda: APIConnectionError("could not connect"), True, True),
    (
        "timeout-after-send",
        lambda: APITimeoutError("no response within 60s", maybe_committed=True),
        True,
        False,
    ),
]


@pytest.mark.parametrize(
    ("failure", "make", "idempotent_retried", "other_retried"),
    RETRY_TABLE,
    ids=[row[0] for row in RETRY_TABLE],
)
@pytest.mark.parametrize("idempotent", [True, False], ids=["GET job", "POST stop"])
async def test_retry_table(
    failure: str,
    make: Callable[[], Outcome],
    idempotent_retried: bool,
    other_retried: bool,
    idempotent: bool,
) -> None:
    clock = VirtualClock()
    client, transport = _client(Script([make()], then=_job()), clock)
    call = client.jobs.retrieve if idempotent else client.jobs.stop
    retried = idempotent_retried if idempotent else other_retried
    async with client:
        if retried:
            job = await call("proj1", "job1")
            assert job.id == "job1"
            assert len(transport.requests) == 2
            assert clock.sleeps, "a retry waits on the client's clock"
            assert client.stats().rate_limited == (1 if failure == "429" else 0)
        else:
            outcome = make()
            with pytest.raises(BasetenError) as info:
                await call("proj1", "job1")
            # Never wrapped, never re-classed: the failure as the transport saw it.
            if isinstance(outcome, HTTPResponse):
                assert type(info.value) is InternalServerError
                assert info.value.status_code == outcome.status
            else:
                assert type(info.value) is type(outcome)
                assert isinstance(info.value, APIConnectionError)
                assert info.value.maybe_committed is True
            assert len(transport.requests) == 1
            assert clock.sleeps == []
    assert transport.requests[0].method == ("GET" if idempotent else "POST")
    assert transport.requests[0].url == BASE + JOB_PATH + ("" if idempotent else "/stop")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@pytest.mark.parametrize("idempotent", [True, False], ids=["GET job", "POST stop"])
async def test_client_errors_are_never_retried(status: int, idempotent: bool) -> None:
    clock = VirtualClock()
    client, transport = _client(Script([], then=_status(status)), clock)
    call = client.jobs.retrieve if idempotent else client.jobs.stop
    async with client:
        with pytest.raises(APIStatusError) as info:
            await call("proj1", "job1")
    assert info.value.status_code == status
    assert len(transport.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [520, 524])
async def test_an_unusual_5xx_on_a_create_is_never_resent(status: int) -> None:
    clock = VirtualClock()
    client, transport = _client(Script([_status(status)], then=_job()), clock)
    async with client:
        with pytest.raises(BasetenError):
            await client.jobs.create("proj1", {"image": {"base_image": "x"}})
    assert [r.method for r in transport.requests] == ["POST"]


# --------------------------------------------------------------------------- the retry budget


async def test_an_exhausted_budget_keeps_the_class_status_and_adds_a_note() -> None:
    clock = VirtualClock()
    failure = json_response(503, {"message": "down"}, {"x-request-id": "rid-7"})
    client, transport = _client(
        Script([], then=failure),
        clock,
        retry_policy=RetryPolicy(max_retries=3),
        retry_budget=RetryBudget(capacity=1),
    )
    async with client:
        with pytest.raises(RetryBudgetExhaustedError) as info:
            await client.projects.list()
    error = info.value
    assert isinstance(error, InternalServerError)
    assert type(error).__name__ == "InternalServerError"
    assert error.status_code == 503
    assert error.message == "down"
    assert error.request_id == "rid-7"
    assert any("retry budget is exhausted" in note for note in error.__notes__)
    assert isinstance(error.__cause__, InternalServerError)
    assert len(transport.requests) == 2  # one retry spent the budget; the next was refused
    stats = client.stats()
    assert (stats.retries, stats.retries_refused) == (1, 1)


async def test_an_exhausted_budget_on_a_connection_error_stays_one() -> None:
    clock = VirtualClock()
    client, transport = _client(
        Script([APIConnectionError("refused")], then=_job()),
        clock,
        retry_budget=RetryBudget(capacity=0),
    )
    async with client:
        with pytest.raises(RetryBudgetExhaustedError) as info:
            await client.jobs.retrieve("proj1", "job1")
    assert isinstance(info.value, APIConnectionError)
    assert info.value.maybe_committed is False
    assert str(info.value) == "refused"
    assert len(transport.requests) == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------- the 429 gate


async def test_the_gate_refuses_at_once_a_call_whose_deadline_is_shorter_than_the_cool_down() -> (
    None
):
    clock = VirtualClock()
    limited = json_response(429, {"error": "slow down", "retry_after": 30})
    client, transport = _client(
        Script([limited], then=json_response(200, {"training_projects": []})),
        clock,
        retry_policy=RetryPolicy(deadline=5.0),
    )
    async with client:
        with pytest.raises(RateLimitError) as first:
            await client.with_options(max_retries=0).projects.list()
        assert first.value.retry_after == 30.0
        # The client is now cooling down for 30 s; this call may wait only 5 s.
        with pytest.raises(RateLimitError) as refused:
            await client.projects.list()
    assert refused.value.retry_after == pytest.approx(30.0)
    assert refused.value.status_code == 429
    assert "cooling down" in str(refused.value)
    assert len(transport.requests) == 1  # the refused call sent nothing
    assert clock.sleeps == []  # and waited for nothing
    assert clock.monotonic() == 0.0


async def test_the_gate_holds_every_call_until_the_cool_down_has_passed() -> None:
    clock = VirtualClock()
    limited = json_response(429, {"error": "slow down", "retry_after": 4})
    client, transport = _client(
        Script([limited], then=json_response(200, {"training_projects": []})), clock
    )
    async with client:
        with pytest.raises(RateLimitError):
            await client.with_options(max_retries=0).projects.list()
        assert await client.projects.list() == []
    assert len(transport.requests) == 2
    assert clock.monotonic() >= 4.0  # the second call waited out the cool-down
    assert client.stats().gate_waits == 1


# --------------------------------------------------------------------------- redaction

SECRET = "sk+live/0123=abc:xyz"


def _echoes() -> list[tuple[str, bytes, dict[str, str]]]:
    escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
    every_other = "".join(f"\\u{ord(c):04X}" if i % 2 else c for i, c in enumerate(SECRET))
    b64 = base64.b64encode(SECRET.encode()).decode()
    b64_header = base64.b64encode(f"Api-Key {SECRET}".encode()).decode()
    urlsafe = base64.urlsafe_b64encode(SECRET.encode()).decode()
    return [
        ("request-id", b'{"message": "bad"}', {"x-request-id": f"req-{SECRET}"}),
        ("raw", f"invalid key {SECRET} given".encode(), {}),
        ("json", f'{{"message": "invalid key {SECRET}"}}'.encode(), {}),
        ("json-escaped", f'{{"message": "invalid key {escaped}"}}'.encode(), {}),
        ("json-partly-escaped", f'{{"message": "key {every_other}"}}'.encode(), {}),
        ("url-encoded", f'{{"message": "key={quote(SECRET, safe="")}"}}'.encode(), {}),
        ("url-path-encoded", f"key={quote(SECRET)}".encode(), {}),
        ("base64", f'{{"message": "auth {b64}"}}'.encode(), {}),
        ("base64-unpadded", f"auth {b64.rstrip('=')}".encode(), {}),
        ("base64-header", f'{{"error": "Authorization: Basic {b64_header}"}}'.encode(), {}),
        ("base64-urlsafe", f"auth {urlsafe}".encode(), {}),
    ]


def _forms() -> list[str]:
    return [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        base64.b64encode(f"Api-Key {SECRET}".encode()).decode().rstrip("="),
    ]


def _assert_clean(error: BaseException, *texts: object) -> None:
    everything = " ".join([str(error), repr(error), *map(str, texts), *map(repr, texts)])
    for form in _forms():
        assert form not in everything, form
    assert "redacted" in everything


@pytest.mark.parametrize(("how", "body", "headers"), _echoes(), ids=[e[0] for e in _echoes()])
async def test_the_key_is_redacted_from_errors(
    how: str, body: bytes, headers: dict[str, str]
) -> None:
    transport = MockTransport(lambda request: json_response(400, body, headers))
    async with AsyncTrainingClient(SECRET, base_url=BASE, transport=transport) as client:
        with pytest.raises(BadRequestError) as info:
            await client.jobs.retrieve("proj1", "job1")
    error = info.value
    assert transport.requests[0].headers["Authorization"] == f"Api-Key {SECRET}"  # it was sent
    _assert_clean(error, error.body, error.message, error.request_id)


@pytest.mark.parametrize(
    ("how", "body", "headers"), _echoes()[1:], ids=[e[0] for e in _echoes()[1:]]
)
async def test_the_key_is_redacted_from_unreadable_success_bodies(
    how: str, body: bytes, headers: dict[str, str]
) -> None:
    transport = MockTransport(lambda request: json_response(200, body, headers))
    async with AsyncTrainingClient(SECRET, base_url=BASE, transport=transport) as client:
        with pytest.raises(APIResponseValidationError) as info:
            await client.jobs.retrieve("proj1", "job1")
    _assert_clean(info.value, info.value.body_snippet)


# --------------------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize("depth", [100_000, 50_000, 5_000])
async def test_deeply_nested_success_bodies_are_validation_errors(depth: int) -> None:
    transport = MockTransport(lambda request: json_response(200, b"[" * depth))
    async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport) as client:
        with pytest.raises(APIResponseValidationError) as info:
            await client.jobs.retrieve("proj1", "job1")
    assert info.value.status_code == 200
    assert info.value.body_snippet.startswith("[[[")
    assert not isinstance(info.value.__cause__, RecursionError)


@pytest.mark.parametrize("depth", [100_000, 50_000, 5_000])
@pytest.mark.parametrize(("status", "error"), [(500, InternalServerError), (429, RateLimitError)])
async def test_deeply_nested_error_bodies_keep_their_status(
    depth: int, status: int, error: type[APIStatusError]
) -> None:
    transport = MockTransport(lambda request: json_response(status, b"[" * depth))
    async with AsyncTrainingClient(
        KEY, base_url=BASE, transport=transport, max_retries=0, clock=VirtualClock()
    ) as client:
        with pytest.raises(error) as info:
            await client.jobs.retrieve("proj1", "job1")
    assert info.value.status_code == status
    assert isinstance(info.value.body, str)  # kept as text, not parsed
    assert len(info.value.message) <= 210


# --------------------------------------------------------------------------- views


async def test_with_options_keeps_the_rest_of_the_policy_and_shares_state() -> None:
    clock = VirtualClock()
    policy = RetryPolicy(
        max_retries=3, initial_backoff=0.25, max_backoff=2.0, max_retry_after=7.0, deadline=50.0
    )
    client, transport = _client(
        Script([_status(503)], then=_job()), clock, retry_policy=policy, timeout=30
    )
    view = client.with_options(timeout=3, max_retries=1)
    assert view.retry_policy == dataclasses.replace(policy, max_retries=1)
    assert view.timeout == 3.0
    assert client.timeout == 30.0
    assert client.retry_policy == policy
    assert view.flow_control is client.flow_control
    assert view.clock is client.clock
    assert view.base_url == client.base_url
    assert view.commit_window == client.commit_window

    only_timeout = client.with_options(timeout=9)
    assert only_timeout.retry_policy == policy
    only_retries = client.with_options(max_retries=0)
    assert only_retries.timeout == 30.0

    await view.jobs.retrieve("proj1", "job1")
    assert [r.timeout for r in transport.requests] == [3.0, 3.0]
    assert client.stats().retries == 1  # the view's retry is the client's
    assert view.stats() == client.stats()
    assert 0.0 <= clock.sleeps[0] <= 0.25

    await client.jobs.retrieve("proj1", "job1")
    assert transport.requests[-1].timeout == 30.0
    await view.aclose()  # a view shares the transport: closing either closes both
    assert transport.closed


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"base_url": "https://api.test:99999"}, "base_url"),
        ({"base_url": "https://api.test:http"}, "base_url"),
        ({"base_url": "http://[::1"}, "base_url"),
        ({"base_url": "https://"}, "base_url"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"commit_window": math.nan}, "commit_window"),
        ({"commit_window": math.inf}, "commit_window"),
        ({"commit_window": 0}, "commit_window"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"on_unknown_outcome": "guess"}, "on_unknown_outcome"),
        ({"transport": object()}, "transport"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(options: dict[str, Any], field: str) -> None:
    settings: dict[str, Any] = {"base_url": BASE, **options}
    with pytest.raises(InvalidInputError) as info:
        AsyncTrainingClient(KEY, **settings)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("timeout", [math.inf, math.nan, 0, -1])
def test_with_options_validates_the_timeout(timeout: float) -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE, transport=MockTransport(lambda r: _job()))
    with pytest.raises(InvalidInputError) as info:
        client.with_options(timeout=timeout)
    assert info.value.field == "timeout"


# --------------------------------------------------------------------------- requests


async def test_requests_carry_auth_json_and_the_idempotency_key() -> None:
    client, transport = _client(Script([], then=_job()), VirtualClock())
    async with client:
        await client.jobs.create(
            "proj1", {"image": {"base_image": "x"}, "name": "n"}, idempotency_key="k-1"
        )
        await client.jobs.retrieve("proj1", "job1")
    create, get = transport.requests
    assert create.method == "POST"
    assert create.body == b'{"training_job":{"image":{"base_image":"x"},"name":"n"}}'
    assert create.headers["Content-Type"] == "application/json"
    assert create.headers["Idempotency-Key"] == "k-1"
    assert create.headers["Authorization"] == f"Api-Key {KEY}"
    assert create.headers["User-Agent"].startswith("baseten-training-async/")
    assert get.body is None
    assert "Content-Type" not in get.headers
    assert "Idempotency-Key" not in get.headers


async def test_logs_return_a_pager_that_is_awaitable_and_iterable() -> None:
    lines = [
        {"timestamp": str(1_000_000_000 + i * 1_000_000), "message": f"line {i}", "replica": None}
        for i in range(3)
    ]

    def handler(request: HTTPRequest) -> HTTPResponse:
        assert request.url == BASE + JOB_PATH + "/logs"
        assert request.params is not None
        start, end = int(request.params["start_epoch_millis"]), request.params["end_epoch_millis"]
        inside = [line for line in lines if start <= int(str(line["timestamp"])) // 10**6]
        assert end == 2000
        return json_response(200, {"logs": inside})

    client, transport = _client(handler, VirtualClock())
    async with client:
        pager = client.jobs.logs("proj1", "job1", start=0, end=2000)
        assert isinstance(pager, AsyncPager)
        listed = await pager
        assert all(isinstance(line, LogLine) for line in listed)
        assert [line.message for line in listed] == ["line 0", "line 1", "line 2"]
        iterated = [
            line.message async for line in client.jobs.logs("proj1", "job1", start=0, end=2000)
        ]
        assert iterated == ["line 0", "line 1", "line 2"]
    assert transport.requests


async def test_a_handler_may_be_async() -> None:
    async def handler(request: HTTPRequest) -> HTTPResponse:
        return _job("TRAINING_JOB_COMPLETED")

    transport = MockTransport(handler)
    async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport) as client:
        job = await client.jobs.retrieve("proj1", "job1")
    assert isinstance(job, TrainingJob)
    assert job.is_terminal
    assert transport.closed
