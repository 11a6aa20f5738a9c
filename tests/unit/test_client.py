from __future__ import annotations

import asyncio
import gc
import json
import warnings
from typing import Any

import aiohttp
import msgspec
import pytest
from aioresponses import aioresponses
from yarl import URL

import baseten_training_async
from baseten_training_async import (
    APIResponseValidationError,
    APIStatusError,
    AsyncTrainingClient,
    BasetenError,
    ClientClosedError,
    Image,
    InvalidInputError,
    NotFoundError,
    PaginationError,
    TrainingJobSpec,
)
from baseten_training_async.testing import MockTransport, VirtualClock, json_response
from tests.conftest import BASE, KEY, job_json, project_json

PROJECTS = f"{BASE}/v1/training_projects"
JOB = f"{BASE}/v1/training_projects/proj1/jobs/job1"


def _sent(mocked: aioresponses, method: str, url: str) -> list[Any]:
    for (m, u), calls in mocked.requests.items():
        if m == method and u == URL(url):
            return list(calls)
    return []


def _body(call: Any) -> Any:
    data = call.kwargs["data"]
    return json.loads(data) if data else None


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every aiohttp session the SDK opens during the test."""
    created: list[aiohttp.ClientSession] = []
    real = aiohttp.ClientSession

    def counting(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = real(*args, **kwargs)
        created.append(session)
        return session

    monkeypatch.setattr(aiohttp, "ClientSession", counting)
    return created


# --------------------------------------------------------------------------- construction


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASETEN_API_KEY", raising=False)
    with pytest.raises(BasetenError, match="BASETEN_API_KEY") as info:
        AsyncTrainingClient()
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == "api_key"


async def test_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    monkeypatch.setenv("BASETEN_API_KEY", "env-key")
    monkeypatch.setenv("BASETEN_BASE_URL", "https://env.example/")
    mocked.get("https://env.example/v1/training_projects", payload={"training_projects": []})
    async with AsyncTrainingClient() as client:
        assert client.base_url == "https://env.example"
        assert await client.projects.list() == []
    assert len(_sent(mocked, "GET", "https://env.example/v1/training_projects")) == 1


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASETEN_BASE_URL", raising=False)
    assert AsyncTrainingClient("k").base_url == "https://api.baseten.co"


@pytest.mark.parametrize("key", ["a\r\nInjected: 1", "a\nb", "tab\there", " padded", "nul\x00"])
def test_keys_with_control_characters_are_refused(key: str) -> None:
    with pytest.raises(InvalidInputError, match="api_key"):
        AsyncTrainingClient(key, base_url=BASE)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://api.example.com", False),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("ftp://api.example.com", False),
        ("https://user:pw@api.example.com", False),
        ("https://api.example.com/prefix/", True),
        ("not a url", False),
    ],
)
def test_base_url_rules(url: str, ok: bool) -> None:
    if ok:
        AsyncTrainingClient("k", base_url=url)
    else:
        with pytest.raises(InvalidInputError, match="base_url"):
            AsyncTrainingClient("k", base_url=url)


def test_insecure_http_needs_an_explicit_opt_in() -> None:
    client = AsyncTrainingClient("k", base_url="http://10.1.2.3", allow_insecure_http=True)
    assert client.base_url == "http://10.1.2.3"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        AsyncTrainingClient("k", base_url=BASE, **kwargs)


def test_repr_never_shows_the_key() -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE)
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert "redacted" in repr(client)


# --------------------------------------------------------------------------- lifecycle


async def test_session_is_lazy_and_reused(
    client: AsyncTrainingClient, mocked: aioresponses, sessions: list[aiohttp.ClientSession]
) -> None:
    assert sessions == []  # building a client opens nothing
    mocked.get(PROJECTS, payload={"training_projects": []}, repeat=True)
    await client.projects.list()
    await client.projects.list()
    (session,) = sessions
    assert session.connector is not None
    assert session.connector.limit == 64
    await client.aclose()
    assert session.closed


async def test_aclose_is_idempotent_and_use_after_close_is_clear(mocked: aioresponses) -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE)
    mocked.get(PROJECTS, payload={"training_projects": []})
    await client.projects.list()
    await client.aclose()
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await client.projects.list()


async def test_unclosed_client_warns(
    mocked: aioresponses, sessions: list[aiohttp.ClientSession]
) -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE)
    mocked.get(PROJECTS, payload={"training_projects": []})
    await client.projects.list()
    (session,) = sessions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    assert any(
        issubclass(w.category, ResourceWarning) and "never closed" in str(w.message) for w in caught
    )
    await session.close()


async def test_a_client_that_never_sent_does_not_warn() -> None:
    client = AsyncTrainingClient(KEY, base_url=BASE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_with_options_shares_the_pool(
    client: AsyncTrainingClient, mocked: aioresponses, sessions: list[aiohttp.ClientSession]
) -> None:
    fast = client.with_options(timeout=2.5, max_retries=0)
    assert fast.timeout == 2.5
    assert fast.retry_policy.max_retries == 0
    assert client.retry_policy.max_retries == 3
    assert fast.flow_control is client.flow_control
    assert fast.clock is client.clock
    with pytest.raises(InvalidInputError):
        client.with_options(timeout=-1)
    mocked.get(PROJECTS, status=503, repeat=True)
    with pytest.raises(APIStatusError):
        await fast.projects.list()
    assert len(_sent(mocked, "GET", PROJECTS)) == 1
    with pytest.raises(APIStatusError):
        await client.projects.list()
    assert len(_sent(mocked, "GET", PROJECTS)) == 1 + 4
    assert len(sessions) == 1  # one pool for the client and its view


# --------------------------------------------------------------------------- endpoints


async def test_upsert_sends_the_wire_body(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    mocked.post(PROJECTS, payload={"training_project": project_json(name="my-project")})
    project = await client.projects.upsert("my-project")
    assert project.name == "my-project"
    (call,) = _sent(mocked, "POST", PROJECTS)
    assert _body(call) == {"training_project": {"name": "my-project"}}
    assert call.kwargs["headers"]["Content-Type"] == "application/json"


async def test_upsert_for_a_team(client: AsyncTrainingClient, mocked: aioresponses) -> None:
    url = f"{BASE}/v1/teams/team%2F1/training_projects"
    mocked.post(url, payload={"training_project": project_json(team_name="research")})
    project = await client.projects.upsert("p", team_id="team/1")
    assert project.team_name == "research"
    assert len(_sent(mocked, "POST", url)) == 1


@pytest.mark.parametrize("name", ["", "   ", None, 3])
async def test_upsert_refuses_bad_names(client: AsyncTrainingClient, name: Any) -> None:
    with pytest.raises(InvalidInputError, match="name"):
        await client.projects.upsert(name)


async def test_list_is_awaitable_and_iterable(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    body = {"training_projects": [project_json("a"), project_json("b")]}
    mocked.get(PROJECTS, payload=body, repeat=True)
    assert [p.id for p in await client.projects.list()] == ["a", "b"]
    assert [p.id async for p in client.projects.list()] == ["a", "b"]
    pages = [page async for page in client.projects.list().pages()]
    assert [[p.id for p in page] for page in pages] == [["a", "b"]]


async def test_create_sends_exactly_the_spec(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    url = f"{BASE}/v1/training_projects/proj1/jobs"
    mocked.post(url, payload={"training_job": job_json(name="j")})
    spec = TrainingJobSpec(image=Image(base_image="hello-world"), name="j")
    job = await client.jobs.create("proj1", spec, idempotency_key="key-1")
    assert job.name == "j"
    (call,) = _sent(mocked, "POST", url)
    assert _body(call) == {"training_job": {"image": {"base_image": "hello-world"}, "name": "j"}}
    assert call.kwargs["headers"]["Idempotency-Key"] == "key-1"


@pytest.mark.parametrize("key", ["", "a b", "a\r\nb", 5])
async def test_bad_idempotency_keys_are_refused(client: AsyncTrainingClient, key: Any) -> None:
    with pytest.raises(InvalidInputError, match="idempotency_key"):
        await client.jobs.create("proj1", {"image": {"base_image": "x"}}, idempotency_key=key)


async def test_recreate(client: AsyncTrainingClient, mocked: aioresponses) -> None:
    url = f"{JOB}/recreate"
    mocked.post(url, payload={"training_job": job_json("job2")})
    assert (await client.jobs.recreate("proj1", "job1")).id == "job2"


@pytest.mark.parametrize(
    ("job_id", "escaped"),
    [("a/b", "a%2Fb"), ("a?b=c", "a%3Fb%3Dc"), ("a#b", "a%23b"), ("..x", "..x"), ("%2F", "%252F")],
)
async def test_ids_are_escaped_into_one_segment(
    client: AsyncTrainingClient, mocked: aioresponses, job_id: str, escaped: str
) -> None:
    url = f"{BASE}/v1/training_projects/proj1/jobs/{escaped}"
    mocked.get(URL(url, encoded=True), payload={"training_job": job_json()})
    await client.jobs.retrieve("proj1", job_id)
    ((_, sent_url),) = list(mocked.requests)
    assert sent_url.raw_path == f"/v1/training_projects/proj1/jobs/{escaped}"


@pytest.mark.parametrize("bad", ["", "  ", ".", "..", None, 7, "a\nb"])
async def test_bad_ids_are_refused_before_any_request(
    client: AsyncTrainingClient, mocked: aioresponses, bad: Any
) -> None:
    with pytest.raises(InvalidInputError, match="job_id"):
        await client.jobs.retrieve("proj1", bad)
    with pytest.raises(InvalidInputError, match="project_id"):
        await client.projects.retrieve(bad)
    assert mocked.requests == {}


async def test_full_surface_paths(client: AsyncTrainingClient, mocked: aioresponses) -> None:
    p = f"{BASE}/v1/training_projects/proj1"
    mocked.get(p, payload={"training_project": project_json()})
    mocked.delete(p, payload={"id": "proj1", "deleted": True})
    mocked.get(
        f"{p}/cache/summary",
        payload={"timestamp": "t", "project_id": "proj1", "file_summaries": []},
    )
    mocked.get(
        f"{p}/jobs", payload={"training_project": project_json(), "training_jobs": [job_json()]}
    )
    mocked.post(f"{JOB}/stop", payload={"training_job": job_json(status="TRAINING_JOB_STOPPED")})
    mocked.delete(JOB, payload={"id": "job1", "deleted": True, "training_project_id": "proj1"})
    mocked.patch(JOB, payload={"training_job": job_json(priority=5)})
    mocked.get(f"{JOB}/download", payload={"artifact_presigned_urls": ["https://x/1"]})
    mocked.get(f"{JOB}/checkpoints", payload={"training_job": job_json(), "checkpoints": []})
    mocked.get(
        f"{BASE}/v1/training/capacity",
        payload={
            "gpu_capacities": [{"gpu_type": "H100", "baseline": 8, "limit": 16, "usage_count": 2}]
        },
    )
    mocked.post(
        f"{BASE}/v1/training_jobs/search", payload={"training_jobs": [job_json()]}, repeat=True
    )

    assert (await client.projects.retrieve("proj1")).id == "proj1"
    assert (await client.projects.delete("proj1")).deleted
    assert (await client.projects.cache_summary("proj1")).project_id == "proj1"
    assert [j.id for j in await client.jobs.list("proj1")] == ["job1"]
    assert (await client.jobs.stop("proj1", "job1")).current_status == "TRAINING_JOB_STOPPED"
    assert (await client.jobs.delete("proj1", "job1")).training_project_id == "proj1"
    assert (await client.jobs.update("proj1", "job1", priority=5)).priority == 5
    assert await client.jobs.download_urls("proj1", "job1") == ["https://x/1"]
    assert await client.jobs.checkpoints("proj1", "job1") == []
    assert (await client.jobs.capacity()).gpu_capacities[0].limit == 16
    assert [j.id for j in await client.jobs.search(project_id="proj1", statuses=["A"])] == ["job1"]
    assert (await client.jobs.find("job1")).id == "job1"
    with pytest.raises(NotFoundError):
        await client.jobs.find("other")

    (patch,) = _sent(mocked, "PATCH", JOB)
    assert _body(patch) == {"priority": 5}
    search_calls = _sent(mocked, "POST", f"{BASE}/v1/training_jobs/search")
    assert _body(search_calls[0]) == {
        "project_id": "proj1",
        "statuses": ["A"],
        "order_by": [{"field": "created_at", "order": "desc"}],
    }
    assert _body(search_calls[1])["job_id"] == "job1"


async def test_argument_checks(client: AsyncTrainingClient) -> None:
    with pytest.raises(InvalidInputError, match="priority"):
        await client.jobs.update("p", "j", priority="high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="order"):
        client.jobs.search(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="statuses"):
        client.jobs.search(statuses="TRAINING_JOB_RUNNING")
    with pytest.raises(InvalidInputError, match="page_size"):
        client.jobs.checkpoint_files("p", "j", page_size=0)
    with pytest.raises(InvalidInputError, match="step_seconds"):
        await client.jobs.metrics("p", "j", step_seconds=0)
    with pytest.raises(InvalidInputError, match="start"):
        await client.jobs.metrics("p", "j", start=-5)
    with pytest.raises(InvalidInputError, match="min_level"):
        client.jobs.logs("p", "j", min_level="")
    with pytest.raises(InvalidInputError, match="end"):
        client.jobs.logs("p", "j", follow=True, end=5)
    with pytest.raises(InvalidInputError, match="timeout"):
        await client.jobs.wait("p", "j", timeout=0)


async def test_checkpoint_files_pages_and_detects_repeats(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    url = f"{JOB}/checkpoint_files"

    def page(names: list[str], nxt: int | None) -> dict[str, Any]:
        files = [
            {
                "url": f"https://x/{n}",
                "relative_file_name": n,
                "node_rank": 0,
                "size_bytes": 1,
                "last_modified": "t",
            }
            for n in names
        ]
        return {"presigned_urls": files, "next_page_token": nxt, "total_count": 5}

    mocked.get(f"{url}?page_size=2&page_token=0", payload=page(["a", "b"], 2))
    mocked.get(f"{url}?page_size=2&page_token=2", payload=page(["c", "d"], 4))
    mocked.get(f"{url}?page_size=2&page_token=4", payload=page(["e"], None))
    names = [
        f.relative_file_name
        async for f in client.jobs.checkpoint_files("proj1", "job1", page_size=2)
    ]
    assert names == ["a", "b", "c", "d", "e"]

    mocked.get(f"{url}?page_size=2&page_token=0", payload=page(["a", "b"], 2))
    mocked.get(f"{url}?page_size=2&page_token=2", payload=page(["c", "d"], 2))
    with pytest.raises(PaginationError, match="repeated page_token 2"):
        await client.jobs.checkpoint_files("proj1", "job1", page_size=2)

    mocked.get(f"{url}?page_size=2&page_token=0", payload=page([], 2))
    assert await client.jobs.checkpoint_files("proj1", "job1", page_size=2) == []


async def test_metrics_query(client: AsyncTrainingClient, mocked: aioresponses) -> None:
    from datetime import UTC, datetime

    series: dict[str, Any] = {"usage_bytes": [], "utilization": []}
    body: dict[str, Any] = {
        "gpu_memory_usage_bytes": {},
        "gpu_utilization": {"0": [{"value": 0.5, "timestamp": "t"}]},
        "cpu_usage": [],
        "cpu_memory_usage_bytes": [],
        "ephemeral_storage": series,
        "training_job": job_json(),
        "cache": None,
        "per_node_metrics": [],
    }
    url = f"{JOB}/metrics?start_epoch_millis=1000&end_epoch_millis=2000&step_seconds=60"
    mocked.get(url, payload=body)
    metrics = await client.jobs.metrics(
        "proj1", "job1", start=datetime.fromtimestamp(1, UTC), end=2000, step_seconds=60
    )
    assert metrics.gpu_utilization["0"][0].value == 0.5
    assert metrics.cache is None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "no such job"}', "no such job"),
        (b'{"error": "bad thing", "code": "E1"}', "bad thing"),
        (b'{"detail": "missing field"}', "missing field"),
        (b'{"detail": [{"loc": ["x"], "msg": "bad"}]}', '[{"loc":["x"],"msg":"bad"}]'),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", "HTTP 404"),
    ],
)
async def test_error_messages_are_parsed_defensively(body: bytes, message: str) -> None:
    transport = MockTransport(lambda request: json_response(404, body, {"x-request-id": "req-9"}))
    async with AsyncTrainingClient(KEY, base_url=BASE, transport=transport) as client:
        with pytest.raises(NotFoundError) as info:
            await client.projects.retrieve("x")
    error = info.value
    assert error.message == message
    assert error.request_id == "req-9"
    assert "req-9" in str(error)
    assert "GET /v1/training_projects/x" in str(error)


async def test_status_errors_carry_request_id_and_body(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    mocked.get(
        JOB, status=404, payload={"message": "gone", "code": "X"}, headers={"x-request-id": "rid-1"}
    )
    with pytest.raises(NotFoundError) as info:
        await client.jobs.retrieve("proj1", "job1")
    assert info.value.request_id == "rid-1"
    assert info.value.body == {"message": "gone", "code": "X"}
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "malformed"),
        (b'{"training_job": {"id": 5}}', "$.training_job.id"),
        (b'{"training_job": null}', "$.training_job"),
        (b"[]", "Expected `object`"),
    ],
)
async def test_bad_success_bodies_raise_validation_errors(
    client: AsyncTrainingClient, mocked: aioresponses, body: bytes, fragment: str
) -> None:
    mocked.get(JOB, body=body)
    with pytest.raises(APIResponseValidationError) as info:
        await client.jobs.retrieve("proj1", "job1")
    assert fragment in str(info.value)
    assert info.value.status_code == 200
    assert info.value.body_snippet == body.decode()[:200]


async def test_redirects_are_errors_not_followed(
    client: AsyncTrainingClient, mocked: aioresponses
) -> None:
    mocked.get(PROJECTS, status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(APIStatusError) as info:
        await client.projects.list()
    assert info.value.status_code == 302
    assert len(mocked.requests) == 1


async def test_oversized_bodies_are_refused(mocked: aioresponses) -> None:
    async with AsyncTrainingClient(
        KEY, base_url=BASE, max_response_bytes=100, clock=VirtualClock()
    ) as client:
        mocked.get(PROJECTS, body=b"x" * 101)
        with pytest.raises(APIResponseValidationError, match="100-byte limit"):
            await client.projects.list()


def test_public_all_is_sorted_and_complete() -> None:
    names = baseten_training_async.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(baseten_training_async, name), name
    public = {n for n in dir(baseten_training_async) if not n.startswith("_")}
    submodules = {"models", "resources", "testing", "cli", "contrib", "coordination"}
    assert public - submodules <= set(names), public - set(names) - submodules
    for contract in (
        "AsyncTrainingClient",
        "TrainingClient",
        "TrainingJobSpec",
        "Image",
        "Compute",
        "Accelerator",
        "Runtime",
        "JobStatus",
        "APIConnectionError",
    ):
        assert contract in names


def test_models_convert_from_plain_dicts() -> None:
    spec = msgspec.convert({"image": {"base_image": "x"}, "name": "n"}, TrainingJobSpec)
    assert spec.image.base_image == "x"


def test_a_client_is_bound_to_the_event_loop_it_first_ran_in(
    mocked: aioresponses, sessions: list[aiohttp.ClientSession]
) -> None:
    mocked.get(PROJECTS, payload={"training_projects": []}, repeat=True)
    client = AsyncTrainingClient(KEY, base_url=BASE)

    async def listing() -> list[Any]:
        return await client.projects.list()

    assert asyncio.run(listing()) == []
    with pytest.raises(BasetenError, match="another event loop"):
        asyncio.run(listing())
    assert len(sessions) == 1
    assert len(_sent(mocked, "GET", PROJECTS)) == 1
    asyncio.run(client.aclose())
    assert sessions[0].closed
