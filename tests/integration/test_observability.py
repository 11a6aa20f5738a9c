"""Hooks, spans and logs of real calls against the fake over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from baseten_training_async import (
    AsyncTrainingClient,
    EventHooks,
    InvalidInputError,
    NotFoundError,
    ReconcileEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)
from baseten_training_async.testing import FakeTrainingAPI, Route
from tests.integration.conftest import FAST_RETRIES

CREATE = "POST /v1/training_projects/{project_id}/jobs"
LIST = "GET /v1/training_projects/{project_id}/jobs"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class Recorder:
    """Hooks that record every event; the response hook is async, the others sync."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def sync(self, event: Any) -> None:
        self.events.append(event)

    async def async_(self, event: Any) -> None:
        await asyncio.sleep(0)
        self.events.append(event)

    def hooks(self) -> EventHooks:
        return {
            "request": [self.sync],
            "response": [self.async_],
            "retry": [self.sync],
            "reconcile": [self.async_],
        }


def _summary(event: Any) -> tuple[Any, ...]:
    if isinstance(event, RequestEvent):
        return ("request", event.route, event.attempt)
    if isinstance(event, ResponseEvent):
        return ("response", event.route, event.attempt, event.status_code)
    if isinstance(event, RetryEvent):
        return ("retry", event.route, event.attempt, event.reason, event.status_code)
    assert isinstance(event, ReconcileEvent)
    return ("reconcile", event.outcome, event.name)


async def test_a_create_with_two_503s_and_a_reconciliation(
    api: FakeTrainingAPI, exporter: InMemorySpanExporter
) -> None:
    recorder = Recorder()
    async with AsyncTrainingClient(
        api.api_key,
        base_url=api.url,
        retry_policy=FAST_RETRIES,
        commit_window=2,
        event_hooks=recorder.hooks(),
        tracer_provider=_provider(exporter),
    ) as client:
        project = await client.projects.upsert("p")
        exporter.clear()
        recorder.events.clear()
        api.inject("status", route=Route.CREATE_JOB, status=503, times=2)
        # The third attempt creates the job, then the connection drops: outcome unknown.
        api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
        job = await client.jobs.create(project.id, {"name": "once", "image": {"base_image": "x"}})
    assert [j.spec["name"] for j in api.jobs.values()] == ["once"]

    assert [_summary(e) for e in recorder.events] == [
        ("request", CREATE, 1),
        ("response", CREATE, 1, 503),
        ("retry", CREATE, 1, "server_error", 503),
        ("request", CREATE, 2),
        ("response", CREATE, 2, 503),
        ("retry", CREATE, 2, "server_error", 503),
        ("request", CREATE, 3),
        ("request", LIST, 1),
        ("response", LIST, 1, 200),
        ("reconcile", "adopted", "once"),
    ]
    retries = [e for e in recorder.events if isinstance(e, RetryEvent)]
    assert all(0 <= e.wait <= FAST_RETRIES.max_backoff for e in retries)
    reconcile = recorder.events[-1]
    assert reconcile.job_id == job.id
    assert reconcile.project_id == project.id
    assert type(reconcile.error).__name__ == "APIConnectionError"
    request = recorder.events[0]
    assert request.url == f"{api.url}/v1/training_projects/{project.id}/jobs"
    assert recorder.events[1].request_id == recorder.events[1].headers.get("x-request-id")

    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.parent is None]
    attempts = [s for s in spans if s.parent is not None]
    assert call.name == f"baseten_training {CREATE}"
    assert call.kind == SpanKind.INTERNAL
    assert call.attributes is not None
    assert call.attributes["baseten_training.retry_count"] == 2
    assert call.attributes["baseten_training.reconcile.outcome"] == "adopted"
    assert call.status.status_code != StatusCode.ERROR
    assert [e.attributes["baseten_training.retry.reason"] for e in call.events] == [  # type: ignore[index]
        "server_error",
        "server_error",
    ]
    assert all(s.parent.span_id == call.context.span_id for s in attempts)  # type: ignore[union-attr]
    assert all(s.kind == SpanKind.CLIENT for s in attempts)
    host, port = api.url.removeprefix("http://").split(":")
    rows = [_attempt_row(s) for s in sorted(attempts, key=lambda s: s.start_time or 0)]
    assert rows == [
        ("POST", CREATE, 503, None, "503"),
        ("POST", CREATE, 503, 1, "503"),
        ("POST", CREATE, None, 2, "APIConnectionError"),
        ("GET", LIST, 200, None, None),
    ]
    first = attempts[0].attributes
    assert first is not None
    assert first["server.address"] == host
    assert first["server.port"] == int(port)
    assert str(first["url.full"]).startswith(f"{api.url}/v1/training_projects/")
    assert api.api_key not in repr([dict(s.attributes or {}) for s in spans])


def _attempt_row(span: ReadableSpan) -> tuple[Any, ...]:
    attributes = span.attributes or {}
    return (
        attributes["http.request.method"],
        span.name,
        attributes.get("http.response.status_code"),
        attributes.get("http.request.resend_count"),
        attributes.get("error.type"),
    )


async def test_a_failed_call_and_429_waits_on_the_span(
    api: FakeTrainingAPI, exporter: InMemorySpanExporter
) -> None:
    recorder = Recorder()
    async with AsyncTrainingClient(
        api.api_key,
        base_url=api.url,
        retry_policy=FAST_RETRIES,
        event_hooks=recorder.hooks(),
        tracing=True,
        tracer_provider=_provider(exporter),
    ) as client:
        api.inject("status", route=Route.LIST_PROJECTS, status=429, retry_after=0.05, times=1)
        await client.projects.list()
        with pytest.raises(NotFoundError):
            await client.projects.retrieve("missing")
    listing, missing = sorted(
        (s for s in exporter.get_finished_spans() if s.parent is None),
        key=lambda s: s.start_time or 0,
    )
    assert listing.attributes is not None
    assert listing.attributes["baseten_training.retry_count"] == 1
    assert listing.attributes["baseten_training.rate_limit.wait_s"] == pytest.approx(0.05)
    assert missing.status.status_code == StatusCode.ERROR
    assert missing.attributes is not None
    assert missing.attributes["error.type"] == "NotFoundError"
    (retry,) = [e for e in recorder.events if isinstance(e, RetryEvent)]
    assert (retry.reason, retry.status_code, retry.wait) == ("rate_limited", 429, 0.05)


async def test_tracing_off_makes_no_spans_and_hooks_that_raise_change_nothing(
    api: FakeTrainingAPI, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RequestEvent) -> None:
        raise RuntimeError("hook bug")

    async with AsyncTrainingClient(
        api.api_key,
        base_url=api.url,
        tracing=False,
        tracer_provider=_provider(exporter),
        event_hooks={"request": [broken]},
    ) as client:
        with caplog.at_level(logging.ERROR, logger="baseten_training_async"):
            project = await client.projects.upsert("p")
    assert project.name == "p"
    assert exporter.get_finished_spans() == ()
    assert "hook bug" in caplog.text


@pytest.mark.parametrize(
    "hooks",
    [{"requests": []}, {"request": print}, {"request": ["not callable"]}, ["request"]],
)
def test_bad_event_hooks_are_refused(hooks: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        AsyncTrainingClient("key", event_hooks=hooks)
    assert "event_hooks" in info.value.field


async def test_reconcile_events_for_a_create_that_cannot_be_settled(api: FakeTrainingAPI) -> None:
    recorder = Recorder()
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, event_hooks=recorder.hooks(), tracing=False
    ) as client:
        project = await client.projects.upsert("p")
        api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
        with pytest.raises(Exception, match="may have been created"):
            await client.jobs.create(project.id, {"image": {"base_image": "x"}})  # no name
    (event,) = [e for e in recorder.events if isinstance(e, ReconcileEvent)]
    assert (event.outcome, event.name, event.job_id) == ("raised", None, None)


async def test_a_trace_that_is_not_sampled_makes_no_spans(
    api: FakeTrainingAPI, exporter: InMemorySpanExporter
) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = Recorder()
    async with AsyncTrainingClient(
        api.api_key,
        base_url=api.url,
        tracing=True,
        tracer_provider=provider,
        event_hooks=recorder.hooks(),
        commit_window=2,
    ) as client:
        project = await client.projects.upsert("p")
        api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
        await client.jobs.create(project.id, {"name": "quiet", "image": {"base_image": "x"}})
    assert exporter.get_finished_spans() == ()
    # Hooks do not depend on tracing.
    assert [e.outcome for e in recorder.events if isinstance(e, ReconcileEvent)] == ["adopted"]
