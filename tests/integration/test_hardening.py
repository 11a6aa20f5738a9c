"""Hostile servers and resource hygiene, over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from baseten_training_async import (
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncTrainingClient,
    BadRequestError,
    BasetenError,
    RetryPolicy,
)
from baseten_training_async.testing import FakeTrainingAPI, Route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"training_projects": []})

    async for url in _serve(record):
        yield url, seen


async def test_redirects_to_another_host_are_not_followed(
    elsewhere: tuple[str, list[web.Request]],
) -> None:
    target, seen = elsewhere

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{target}/v1/training_projects")

    async for url in _serve(redirect):
        async with AsyncTrainingClient("secret-key", base_url=url) as client:
            with pytest.raises(APIStatusError) as info:
                await client.projects.list()
    assert info.value.status_code == 302
    assert seen == []  # the key never reached the other server


async def test_a_stalled_body_times_out() -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"training_projects": [')
        await asyncio.sleep(1.0)
        return response

    async for url in _serve(stall):
        policy = RetryPolicy(max_retries=1, initial_backoff=0.01)
        async with AsyncTrainingClient(
            "k", base_url=url, timeout=0.3, retry_policy=policy
        ) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(APITimeoutError):
                await client.projects.list()
            assert asyncio.get_running_loop().time() - started < 2.0


async def test_an_oversized_chunked_body_is_refused() -> None:
    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b" " * 65536)
        return response

    async for url in _serve(flood):
        async with AsyncTrainingClient(
            "k", base_url=url, max_response_bytes=1 << 20, max_retries=0
        ) as client:
            with pytest.raises(APIResponseValidationError, match="limit"):
                await client.projects.list()


async def test_non_json_error_bodies_still_explain_themselves() -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(
            status=400, text="<h1>Bad request: field x</h1>", content_type="text/html"
        )

    async for url in _serve(html):
        async with AsyncTrainingClient("k", base_url=url) as client:
            with pytest.raises(BadRequestError, match="field x"):
                await client.projects.list()


async def test_the_key_never_leaks_into_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-very-secret-123"

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"message": f"bad header {request.headers['Authorization']}"}, status=503
        )

    async for url in _serve(echo):
        async with AsyncTrainingClient(
            key, base_url=url, retry_policy=RetryPolicy(max_retries=1, initial_backoff=0.01)
        ) as client:
            with caplog.at_level(logging.DEBUG), pytest.raises(APIStatusError) as info:
                await client.projects.list()
            assert key not in repr(client)
    assert key not in str(info.value)
    assert key not in repr(info.value.body)
    assert "<redacted>" in info.value.message
    assert key not in caplog.text
    assert "retrying" in caplog.text


async def test_cancelling_100_in_flight_calls_frees_everything() -> None:
    async with FakeTrainingAPI(seed=1) as api:
        project = api.add_project("p")
        job = api.add_job(project.id)
        async with AsyncTrainingClient(api.api_key, base_url=api.url, max_concurrency=64) as client:
            slow = api.inject("latency", route=Route.GET_JOB, delay=1.5)
            calls = [
                asyncio.create_task(client.jobs.retrieve(project.id, job.id)) for _ in range(100)
            ]
            await asyncio.sleep(0.2)
            for call in calls:
                call.cancel()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            assert client.stats().in_flight == 0
            slow.remove()
            jobs = await asyncio.wait_for(
                asyncio.gather(*(client.jobs.retrieve(project.id, job.id) for _ in range(64))),
                timeout=10,
            )
            assert {j.id for j in jobs} == {job.id}


async def test_one_client_in_two_event_loops_is_a_clear_error() -> None:
    async with FakeTrainingAPI() as api:
        async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
            await client.projects.list()

            def other_loop() -> BaseException | None:
                try:
                    asyncio.run(client.projects.list().to_list())
                except BaseException as exc:
                    return exc
                return None

            error = await asyncio.wait_for(asyncio.to_thread(other_loop), timeout=5)
    assert isinstance(error, BasetenError)
    assert "another event loop" in str(error)


async def test_the_size_cap_counts_decompressed_bytes() -> None:
    import gzip

    packed = gzip.compress(b'{"training_projects": [' + b" " * 5_000_000 + b"]}")

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async for url in _serve(bomb):
        async with AsyncTrainingClient(
            "k", base_url=url, max_response_bytes=100_000, max_retries=0
        ) as client:
            assert len(packed) < 100_000
            with pytest.raises(APIResponseValidationError, match="100000-byte limit"):
                await client.projects.list()
