"""Escape hatches: extra headers, query and body; raw responses with request ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    HTTPRequest,
    HTTPResponse,
    InvalidInputError,
    RawResponse,
    TrainingClient,
    TrainingJob,
)
from baseten_training_async.testing import MockTransport, json_response
from tests.conftest import BASE, KEY, job_json, project_json


def _handler(request: HTTPRequest) -> HTTPResponse:
    headers = {"x-request-id": f"req-{request.method.lower()}"}
    if request.url.endswith("/jobs") and request.method == "POST":
        return json_response(200, {"training_job": job_json()}, headers)
    if request.url.endswith("/jobs"):
        return json_response(200, {"training_jobs": [job_json(), job_json("job2")]}, headers)
    if "/jobs/" in request.url:
        return json_response(200, {"training_job": job_json()}, headers)
    return json_response(200, {"training_project": project_json()}, headers)


def _client(transport: MockTransport) -> AsyncTrainingClient:
    return AsyncTrainingClient(KEY, base_url=BASE, transport=transport)


async def test_extra_headers_query_and_body_reach_the_wire() -> None:
    transport = MockTransport(_handler)
    async with _client(transport) as client:
        view = client.with_options(
            extra_headers={"X-Feature": "on", "User-Agent": "mine/1"},
            extra_query={"dry_run": 1},
            extra_body={"new_field": {"a": 1}, "training_job": {"name": "renamed", "x": [1]}},
        )
        await view.jobs.create("proj1", {"name": "n", "image": {"base_image": "x"}})
        await view.jobs.retrieve("proj1", "job1")
        await client.jobs.retrieve("proj1", "job1")  # the client itself is unchanged
    create, get, plain = transport.requests
    assert create.headers["X-Feature"] == "on"
    assert create.headers["User-Agent"] == "mine/1"
    assert create.headers["Authorization"] == f"Api-Key {KEY}"
    assert create.params == {"dry_run": 1}
    assert create.body is not None
    body: dict[str, Any] = json.loads(create.body)
    # Objects merge into objects: the spec keeps its fields and gains the new ones.
    assert body == {
        "new_field": {"a": 1},
        "training_job": {"name": "renamed", "image": {"base_image": "x"}, "x": [1]},
    }
    # A call without a body gets the headers and the query, never a body.
    assert get.body is None
    assert (get.headers["X-Feature"], get.params) == ("on", {"dry_run": 1})
    assert "X-Feature" not in plain.headers
    assert plain.params is None


async def test_with_options_views_stack_their_extras() -> None:
    transport = MockTransport(_handler)
    async with _client(transport) as client:
        view = client.with_options(extra_headers={"A": "1"}).with_options(
            extra_headers={"B": "2"}, timeout=5
        )
        assert view.timeout == 5
        await view.projects.retrieve("proj1")
    (request,) = transport.requests
    assert (request.headers["A"], request.headers["B"]) == ("1", "2")
    assert request.timeout == 5


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"extra_headers": {"X-Bad": "a\r\nb"}}, "extra_headers['X-Bad']"),
        ({"extra_headers": {"X-Num": 1}}, "extra_headers['X-Num']"),
        ({"extra_query": {1: "x"}}, "extra_query"),
        ({"extra_body": ["not", "a", "dict"]}, "extra_body"),
    ],
)
def test_bad_extras_are_refused(options: dict[str, Any], field: str) -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE, transport=MockTransport(_handler))
    with pytest.raises(InvalidInputError) as info:
        client.with_options(**options)
    assert info.value.field == field


async def test_raw_responses_carry_status_headers_and_request_id() -> None:
    transport = MockTransport(_handler)
    async with _client(transport) as client:
        raw = await client.with_raw_response.jobs.retrieve("proj1", "job1")
        listing = await client.with_raw_response.jobs.list("proj1")
        created = await client.with_raw_response.jobs.create(
            "proj1", {"name": "n", "image": {"base_image": "x"}}
        )
        plain = await client.jobs.retrieve("proj1", "job1")
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.request_id == "req-get"
    assert raw.headers["Content-Type"] == "application/json"
    assert isinstance(raw.value, TrainingJob)
    assert raw.value == plain  # the model is the same; nothing added to it
    assert [job.id for job in listing.value] == ["job1", "job2"]
    assert created.request_id == "req-post"
    assert created.value.id == "job1"


async def test_raw_response_view_only_wraps_methods() -> None:
    async with _client(MockTransport(_handler)) as client:
        raw = client.with_raw_response
        with pytest.raises(AttributeError):
            _ = raw.base_url
        with pytest.raises(AttributeError):
            _ = raw.jobs._core
        with pytest.raises(InvalidInputError):
            # Refused before any request: no response to return.
            await raw.jobs.retrieve("", "job1")


def test_the_sync_client_has_the_same_escape_hatches() -> None:
    transport = MockTransport(_handler)
    with TrainingClient(KEY, base_url=BASE, transport=transport) as client:
        raw = client.with_raw_response.jobs.retrieve("proj1", "job1")
        tagged = client.with_options(extra_headers={"X-Feature": "on"})
        tagged.projects.retrieve("proj1")
    assert isinstance(raw, RawResponse)
    assert (raw.status_code, raw.request_id, raw.value.id) == (200, "req-get", "job1")
    assert transport.requests[-1].headers["X-Feature"] == "on"
