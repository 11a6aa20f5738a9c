"""The newer operations: what each sends, and which of them are retried."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    AvailabilityModel,
    HTTPRequest,
    HTTPResponse,
    InternalServerError,
    InvalidInputError,
    SessionTrigger,
)
from baseten_training_async.testing import MockTransport, fake_time, json_response
from tests.conftest import job_json

J = "/v1/training_projects/p1/jobs/j1"
TEAM_CAPACITY = {
    "team_id": "t1",
    "team_name": "ml",
    "gpu_type": "H100",
    "baseline": 0,
    "limit": 8,
    "usage_count": 2,
    "dedicated_usage_count": 1,
    "spot_usage_count": 1,
}
SESSION = {
    "id": "s1",
    "trigger": "on_demand",
    "timeout_minutes": 510,
    "session_provider": "vs_code",
    "auth_provider": "github",
    "pod_name": "pod-0",
}


class Server:
    """Answers from a queue of responses and keeps every request."""

    def __init__(self, *responses: HTTPResponse) -> None:
        self.responses = list(responses)
        self.transport = MockTransport(self.handle)

    def handle(self, request: HTTPRequest) -> HTTPResponse:
        return self.responses.pop(0)

    @property
    def sent(self) -> list[tuple[str, str, Any]]:
        return [
            (
                r.method,
                r.url.removeprefix("https://api.test"),
                None if r.body is None else json.loads(r.body),
            )
            for r in self.transport.requests
        ]


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[AsyncTrainingClient]:
    async with AsyncTrainingClient(
        "key", base_url="https://api.test", transport=server.transport
    ) as c:
        yield c


async def test_capacity_update_sends_the_limit_and_is_retried(
    server: Server, client: AsyncTrainingClient
) -> None:
    server.responses += [
        json_response(502, {"error": "bad gateway"}),
        json_response(200, {"team_gpu_capacity": TEAM_CAPACITY}),
    ]
    with fake_time():
        capacity = await client.capacity.update(team_id="t1", gpu_type="H100", max_gpus=8)
    assert (capacity.team_name, capacity.limit, capacity.spot_usage_count) == ("ml", 8, 1)
    body = {"team_id": "t1", "gpu_type": "H100", "max_gpus": 8}
    assert server.sent == [("PATCH", "/v1/training/capacity", body)] * 2


async def test_session_update_sends_only_what_is_given_and_is_not_retried(
    server: Server, client: AsyncTrainingClient
) -> None:
    server.responses += [
        json_response(200, {"interactive_session": SESSION, "message": "Updated"}),
        json_response(502, {"error": "bad gateway"}),
    ]
    result = await client.jobs.sessions.update("p1", "j1", "s1", timeout_minutes=30)
    assert (result.interactive_session.timeout_minutes, result.message) == (510, "Updated")
    with fake_time(), pytest.raises(InternalServerError):
        await client.jobs.sessions.update("p1", "j1", "s1", trigger=SessionTrigger.ON_FAILURE)
    assert server.sent == [
        ("PATCH", J + "/interactive_sessions/s1", {"timeout_minutes": 30}),
        ("PATCH", J + "/interactive_sessions/s1", {"trigger": "on_failure"}),
    ]


async def test_ssh_sign_and_job_update_bodies(server: Server, client: AsyncTrainingClient) -> None:
    cert = {
        "ssh_certificate": "cert",
        "jwt": "a.b.c",
        "proxy_address": "proxy:22",
        "ssh_cert_expires_at": "2026-01-01T00:00:00Z",
    }
    server.responses += [
        json_response(200, cert),
        json_response(200, {"training_job": job_json("j1", availability_model="spot")}),
    ]
    signed = await client.jobs.sessions.sign_ssh_key("p1", "j1", public_key="ssh-ed25519 AAAA")
    assert signed.proxy_address == "proxy:22"
    job = await client.jobs.update("p1", "j1", availability_model=AvailabilityModel.SPOT)
    assert job.availability_model == "spot"
    assert server.sent == [
        ("POST", J + "/ssh/sign", {"public_key": "ssh-ed25519 AAAA"}),
        ("PATCH", J, {"availability_model": "spot"}),
    ]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.jobs.update("p", "j"), "priority"),
        (lambda c: c.jobs.update("p", "j", availability_model=""), "availability_model"),
        (lambda c: c.jobs.sessions.update("p", "j", "s"), "timeout_minutes"),
        (lambda c: c.jobs.sessions.update("p", "j", "s", timeout_minutes=-2), "timeout_minutes"),
        (lambda c: c.jobs.sessions.update("p", "j", "", trigger="x"), "session_id"),
        (lambda c: c.jobs.sessions.sign_ssh_key("p", "j", public_key=" "), "public_key"),
        (lambda c: c.capacity.update(team_id="t", gpu_type="H100", max_gpus=-1), "max_gpus"),
        (lambda c: c.capacity.update(team_id="t", gpu_type="", max_gpus=1), "gpu_type"),
        (lambda c: c.jobs.queue_context(""), "job_id"),
    ],
)
async def test_invalid_arguments_are_refused_before_sending(
    server: Server, client: AsyncTrainingClient, call: Any, field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        await call(client)
    assert info.value.field == field
    assert server.sent == []


async def test_a_log_level_the_sdk_does_not_know_is_sent(
    server: Server, client: AsyncTrainingClient
) -> None:
    server.responses.append(json_response(200, {"logs": []}))
    lines = await client.jobs.logs("p1", "j1", start=0, end=1000, min_level="CRITICAL")
    assert lines == []
    (request,) = server.transport.requests
    assert request.params is not None
    assert dict(request.params)["min_level"] == "CRITICAL"
    with pytest.raises(InvalidInputError) as info:
        client.jobs.logs("p1", "j1", min_level="")
    assert info.value.field == "min_level"
