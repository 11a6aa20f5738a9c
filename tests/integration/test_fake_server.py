"""Behaviour of the fake Training API, driven with a raw aiohttp client (not the SDK)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from baseten_training_async.testing import (
    FakeClock,
    FakeTrainingAPI,
    JobTimings,
    LogLine,
    Route,
)

pytest_plugins = ["baseten_training_async.testing.pytest_plugin"]

T0 = 1_700_000_000.0
MS = 1_000_000  # nanoseconds per millisecond
DAY_MS = 24 * 3600 * 1000
CREATED = "TRAINING_JOB_CREATED"
DEPLOYING = "TRAINING_JOB_DEPLOYING"
RUNNING = "TRAINING_JOB_RUNNING"
COMPLETED = "TRAINING_JOB_COMPLETED"
FAILED = "TRAINING_JOB_FAILED"
PENDING = "TRAINING_JOB_PENDING"
STOPPED = "TRAINING_JOB_STOPPED"
JOB = {"image": {"base_image": "hello-world"}}
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
async def server(clock: FakeClock) -> AsyncIterator[FakeTrainingAPI]:
    async with FakeTrainingAPI(clock=clock, validate_responses=True) as fake:
        yield fake


@pytest.fixture
async def http(server: FakeTrainingAPI) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Api-Key {server.api_key}"}
    async with aiohttp.ClientSession(server.url, headers=headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, path, **kwargs) as response:
        assert response.headers["x-request-id"]
        return response.status, await response.json()


async def make_project(http: aiohttp.ClientSession, name: str = "proj") -> str:
    status, body = await call(http, "POST", "/v1/training_projects", json=project_body(name))
    assert status == 200, body
    return str(body["training_project"]["id"])


async def make_job(
    http: aiohttp.ClientSession, project_id: str, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    status, body = await call(
        http, "POST", f"/v1/training_projects/{project_id}/jobs", json={"training_job": spec or JOB}
    )
    assert status == 200, body
    job: dict[str, Any] = body["training_job"]
    return job


def project_body(name: str) -> dict[str, Any]:
    return {"training_project": {"name": name}}


def jobs_path(project_id: str, job_id: str = "") -> str:
    return f"/v1/training_projects/{project_id}/jobs" + (f"/{job_id}" if job_id else "")


# -- auth, request ids, unknown paths -----------------------------------------------------


async def test_auth_required_and_both_schemes_accepted(server: FakeTrainingAPI) -> None:
    async with aiohttp.ClientSession(server.url) as anon:
        status, body = await call(anon, "GET", "/v1/training_projects")
        assert status == 401
        assert isinstance(body["message"], str)
        for header in ("Api-Key wrong", "Basic abc", server.api_key):
            status, _ = await call(
                anon, "GET", "/v1/training_projects", headers={"Authorization": header}
            )
            assert status == 401
        for scheme in ("Api-Key", "Bearer", "api-key", "bearer"):
            headers = {"Authorization": f"{scheme} {server.api_key}"}
            status, _ = await call(anon, "GET", "/v1/training_projects", headers=headers)
            assert status == 200
    assert server.stats.unauthorized == 4


async def test_request_ids_are_unique_and_deterministic(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    ids = []
    for _ in range(3):
        async with http.get("/v1/teams") as response:
            ids.append(response.headers["x-request-id"])
    assert len(set(ids)) == 3
    assert ids == [record.request_id for record in server.requests]
    assert ids[0] == "fake-req-0-0000001"


async def test_unknown_path_is_json_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/v1/nope")
    assert status == 404
    assert "message" in body


# -- projects and teams ---------------------------------------------------------------------


async def test_upsert_is_idempotent_by_name(
    server: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _, first = await call(http, "POST", "/v1/training_projects", json=project_body("p"))
    clock.advance(60)
    _, second = await call(http, "POST", "/v1/training_projects", json=project_body("p"))
    _, other = await call(http, "POST", "/v1/training_projects", json=project_body("q"))
    a, b = first["training_project"], second["training_project"]
    assert a["id"] == b["id"] != other["training_project"]["id"]
    assert a["created_at"] == b["created_at"]
    assert b["updated_at"] > a["updated_at"]
    assert a["latest_job"] is None
    assert a["team_name"] is None
    assert server.stats.projects_created == 2
    _, listing = await call(http, "GET", "/v1/training_projects")
    assert [p["name"] for p in listing["training_projects"]] == ["p", "q"]


async def test_team_endpoint_sets_team_name(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, "GET", "/v1/teams")
    assert status == 200
    teams = body["teams"]
    assert len(teams) == 2
    assert sum(team["default"] for team in teams) == 1
    team = teams[1]
    status, body = await call(
        http, "POST", f"/v1/teams/{team['id']}/training_projects", json=project_body("tp")
    )
    assert status == 200
    assert body["training_project"]["team_name"] == team["name"]
    status, body = await call(
        http, "POST", "/v1/teams/nope/training_projects", json=project_body("tp")
    )
    assert status == 404
    assert "nope" in body["message"]
    added = server.add_team("Extra")
    status, _ = await call(
        http, "POST", f"/v1/teams/{added.id}/training_projects", json=project_body("x")
    )
    assert status == 200


async def test_not_found_everywhere(http: aiohttp.ClientSession) -> None:
    project_id = await make_project(http)
    other_project = await make_project(http, "other")
    job = await make_job(http, other_project)
    for method, path in [
        ("GET", "/v1/training_projects/missing"),
        ("DELETE", "/v1/training_projects/missing"),
        ("GET", "/v1/training_projects/missing/jobs"),
        ("GET", "/v1/training_projects/missing/cache/summary"),
        ("GET", jobs_path(project_id, "missing")),
        ("GET", jobs_path(project_id, job["id"])),  # job of another project
        ("POST", jobs_path(project_id, job["id"]) + "/stop"),
        ("GET", "/v1/training/jobs/missing/queue_context"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
        status, body = await call(http, method, path, **kwargs)
        assert status == 404, (method, path)
        assert isinstance(body["message"], str)
    status, _ = await call(
        http,
        "PATCH",
        jobs_path(other_project, job["id"]) + "/interactive_sessions/x",
        json={},
    )
    assert status == 404


async def test_delete_project_deletes_its_jobs(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    await make_job(http, project_id)
    status, body = await call(http, "DELETE", f"/v1/training_projects/{project_id}")
    assert status == 200
    assert body == {"id": project_id, "deleted": True}
    assert server.jobs == {}
    assert server.projects == {}


# -- jobs -------------------------------------------------------------------------------------


async def test_job_lifecycle(server: FakeTrainingAPI, http: aiohttp.ClientSession) -> None:
    project_id = await make_project(http)
    spec = {
        "image": {"base_image": "hello-world"},
        "compute": {"accelerator": {"accelerator": "H100", "count": 2}, "node_count": 2},
        "name": "dup",
    }
    job = await make_job(http, project_id, spec)
    twin = await make_job(http, project_id, spec)
    assert job["id"] != twin["id"]
    assert job["name"] == twin["name"] == "dup"
    assert re.fullmatch(r"[a-z0-9]{7}", job["id"])
    assert job["current_status"] == CREATED
    assert job["instance_type"]["id"] == "H100x2"
    assert job["instance_type"]["gpu_count"] == 2
    assert job["training_project"] == {"id": project_id, "name": "proj"}

    stored = server.jobs[job["id"]].spec
    assert stored["compute"]["cpu_count"] == 1  # defaults filled like the real parser
    assert stored["enable_baseten_workdir"] is False

    _, listing = await call(http, "GET", jobs_path(project_id))
    assert [j["id"] for j in listing["training_jobs"]] == [job["id"], twin["id"]]
    assert listing["training_project"]["latest_job"]["id"] == twin["id"]

    status, got = await call(http, "GET", jobs_path(project_id, job["id"]))
    assert status == 200
    assert got["training_job"]["id"] == job["id"]
    assert got["training_project"]["id"] == project_id

    status, again = await call(http, "POST", jobs_path(project_id, job["id"]) + "/recreate")
    assert status == 200
    new_id = again["training_job"]["id"]
    assert new_id not in (job["id"], twin["id"])
    assert server.jobs[new_id].spec == server.jobs[job["id"]].spec
    assert server.jobs[new_id].recreated_from == job["id"]

    status, stopped = await call(http, "POST", jobs_path(project_id, job["id"]) + "/stop", json={})
    assert status == 200
    assert stopped["training_job"]["current_status"] == STOPPED
    status, stopped_again = await call(
        http, "POST", jobs_path(project_id, job["id"]) + "/stop", json={}
    )
    assert status == 200
    assert stopped_again["training_job"]["current_status"] == STOPPED

    status, tomb = await call(http, "DELETE", jobs_path(project_id, twin["id"]))
    assert status == 200
    assert tomb == {"id": twin["id"], "deleted": True, "training_project_id": project_id}
    status, _ = await call(http, "GET", jobs_path(project_id, twin["id"]))
    assert status == 404
    assert server.stats.jobs_created == 3
    assert server.stats.jobs_recreated == 1
    assert server.stats.jobs_stopped == 2  # the explicit stop and the deletion


async def test_stop_accepts_an_empty_body(http: aiohttp.ClientSession) -> None:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    status, body = await call(http, "POST", jobs_path(project_id, job["id"]) + "/stop")
    assert status == 200
    assert body["training_job"]["current_status"] == STOPPED


@pytest.mark.parametrize(
    ("training_job", "field"),
    [
        ({"image": {"base_image": "x"}, "compute": {"node_count": "2"}}, "compute.node_count"),
        ({"image": {"base_image": "x"}, "name": 5}, "training_job.name"),
        ({"image": {}}, "training_job.image.base_image"),
        ({"compute": {}}, "training_job.image"),
        ({"image": {"base_image": "x"}, "runtime": {"artifacts": 5}}, "runtime.artifacts"),
        (
            {"image": {"base_image": "x"}, "compute": {"availability_model": "cheap"}},
            "compute.availability_model",
        ),
        (
            {
                "image": {"base_image": "x"},
                "runtime": {"load_checkpoint_config": {"checkpoints": [{"job_id": "j"}]}},
            },
            "runtime.load_checkpoint_config.checkpoints[0].typ",
        ),
        (
            {"image": {"base_image": "x"}, "runtime": {"environment_variables": {"K": 3}}},
            "runtime.environment_variables.K",
        ),
    ],
)
async def test_create_validation_names_the_field(
    server: FakeTrainingAPI,
    http: aiohttp.ClientSession,
    training_job: dict[str, Any],
    field: str,
) -> None:
    project_id = await make_project(http)
    status, body = await call(
        http, "POST", jobs_path(project_id), json={"training_job": training_job}
    )
    assert status == 400
    assert field in body["message"]
    assert server.jobs == {}


async def test_bad_bodies(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/v1/training_projects", data=b"{not json")
    assert status == 400
    assert "JSON" in body["message"]
    status, body = await call(http, "POST", "/v1/training_projects", json=[1])
    assert status == 400
    assert "expected object" in body["message"]
    status, body = await call(http, "POST", "/v1/training_projects", data=b"")
    assert status == 400
    assert "training_project" in body["message"]
    status, body = await call(http, "POST", "/v1/training_projects", json=project_body(" "))
    assert status == 400
    assert "training_project.name" in body["message"]


async def test_docs_example_with_nulls_is_accepted_where_the_spec_allows(
    http: aiohttp.ClientSession,
) -> None:
    project_id = await make_project(http)
    spec = {
        "image": {"base_image": "hello-world", "docker_auth": None},
        "compute": {
            "node_count": 1,
            "cpu_count": 1,
            "memory": "2Gi",
            "accelerator": {"accelerator": "H100", "count": 2},
            "availability_model": "spot",
        },
        "runtime": {
            "start_commands": ["python main.py"],
            "environment_variables": {"API_KEY": "k", "HF": {"name": "hf_token"}},
            "enable_cache": True,
            "cache_config": {"enabled": True},
            "checkpointing_config": {"enabled": True, "checkpoint_path": "/mnt/ckpts"},
            "load_checkpoint_config": None,
        },
        "name": "gpt-oss-job",
        "truss_user_env": None,
        "interactive_session": None,
        "weights": [{"source": "hf://a/b@main", "mount_location": "/app/models/base"}],
        "enable_baseten_workdir": False,
        "priority": 0,
    }
    job = await make_job(http, project_id, spec)
    assert job["availability_model"] == "spot"


# -- status progression -----------------------------------------------------------------------


async def test_status_progresses_on_the_clock(
    server: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    path = jobs_path(project_id, job["id"])
    seen = []
    for step in (0.0, 1.0, 2.0, 7.0, 3.0):  # timings: created 1s, deploying 2s, running 10s
        clock.advance(step)
        _, body = await call(http, "GET", path)
        seen.append(body["training_job"]["current_status"])
    assert seen == [CREATED, DEPLOYING, RUNNING, RUNNING, COMPLETED]
    _, body = await call(http, "GET", path)
    assert body["training_job"]["updated_at"] > body["training_job"]["created_at"]
    assert server.job_status(job["id"]) == COMPLETED
    _, body = await call(http, "POST", path + "/stop", json={})
    assert body["training_job"]["current_status"] == COMPLETED  # already finished


async def test_failed_by_rule(clock: FakeClock) -> None:
    def outcome(spec: Any) -> str:
        return FAILED if spec.get("priority") == 7 else COMPLETED

    async with FakeTrainingAPI(clock=clock, outcome=outcome, validate_responses=True) as fake:
        project = fake.add_project("p")
        bad = fake.add_job(project.id, {"image": {"base_image": "x"}, "priority": 7})
        good = fake.add_job(project.id, {"image": {"base_image": "x"}, "name": "fail-not"})
        clock.advance(100)
        assert fake.job_status(bad.id) == FAILED
        assert fake.job_status(good.id) == COMPLETED
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with aiohttp.ClientSession(fake.url, headers=headers) as http:
            _, body = await call(http, "GET", jobs_path(project.id, bad.id))
        assert body["training_job"]["error_message"]


async def test_default_rule_fails_jobs_named_fail(
    server: FakeTrainingAPI, clock: FakeClock
) -> None:
    project = server.add_project("p")
    job = server.add_job(project.id, {"image": {"base_image": "x"}, "name": "will-FAIL"})
    clock.advance(100)
    assert server.job_status(job.id) == FAILED
    assert server.logs(job.id)[-1].level == "ERROR"


async def test_capacity_queues_jobs_pending(clock: FakeClock) -> None:
    async with FakeTrainingAPI(clock=clock, capacity=1, validate_responses=True) as fake:
        headers = {"Authorization": f"Api-Key {fake.api_key}"}
        async with aiohttp.ClientSession(fake.url, headers=headers) as http:
            project_id = await make_project(http)
            first = await make_job(http, project_id)
            second = await make_job(http, project_id)
            third = await make_job(http, project_id)
            assert [first["current_status"], second["current_status"]] == [CREATED, PENDING]
            # Only pending jobs take a priority; the third jumps the queue.
            status, body = await call(
                http, "PATCH", jobs_path(project_id, first["id"]), json={"priority": 5}
            )
            assert status == 400
            status, body = await call(
                http, "PATCH", jobs_path(project_id, third["id"]), json={"priority": 5}
            )
            assert status == 200
            assert body["training_job"]["priority"] == 5
            status, body = await call(
                http, "PATCH", jobs_path(project_id, third["id"]), json={"priority": "high"}
            )
            assert status == 400
            assert "priority" in body["message"]
            clock.advance(13)  # first completes at +13s
            assert fake.job_status(first["id"]) == COMPLETED
            assert fake.job_status(third["id"]) == CREATED
            assert fake.job_status(second["id"]) == PENDING
            _, context = await call(http, "GET", f"/v1/training/jobs/{third['id']}/queue_context")
            assert context["pending_seconds"] == 13
            assert [a["training_job_id"] for a in context["active_at_submit"]] == [first["id"]]
            statuses = [
                e["status"] for e in context["events"] if e["training_job_id"] == third["id"]
            ]
            assert statuses == [PENDING, CREATED]
            clock.advance(13)
            assert fake.job_status(second["id"]) == CREATED
            # Stopping the running job releases the next immediately.
            fake.capacity = 0
            await call(http, "POST", jobs_path(project_id, second["id"]) + "/stop", json={})
            fourth = await make_job(http, project_id)
            assert fourth["current_status"] == PENDING
            fake.capacity = None
            assert fake.job_status(fourth["id"]) == CREATED


async def test_force_status_accepts_unknown_values(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    server.force_status(job["id"], "TRAINING_JOB_SOMETHING_NEW")
    _, body = await call(http, "GET", jobs_path(project_id, job["id"]))
    assert body["training_job"]["current_status"] == "TRAINING_JOB_SOMETHING_NEW"


async def test_search_filters_and_orders(
    server: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    p1 = await make_project(http, "a")
    p2 = await make_project(http, "b")
    j1 = await make_job(http, p1)
    clock.advance(20)
    j2 = await make_job(http, p1)
    j3 = await make_job(http, p2)
    _, body = await call(http, "POST", "/v1/training_jobs/search", json={})
    assert [j["id"] for j in body["training_jobs"]] == [j3["id"], j2["id"], j1["id"]]
    asc = {"order_by": [{"field": "created_at", "order": "asc"}], "project_id": p1}
    _, body = await call(http, "POST", "/v1/training_jobs/search", json=asc)
    assert [j["id"] for j in body["training_jobs"]] == [j1["id"], j2["id"]]
    _, body = await call(http, "POST", "/v1/training_jobs/search", json={"statuses": [COMPLETED]})
    assert [j["id"] for j in body["training_jobs"]] == [j1["id"]]
    _, body = await call(http, "POST", "/v1/training_jobs/search", json={"job_id": j3["id"]})
    assert [j["id"] for j in body["training_jobs"]] == [j3["id"]]
    status, body = await call(
        http,
        "POST",
        "/v1/training_jobs/search",
        json={"order_by": [{"field": "name", "order": "asc"}]},
    )
    assert status == 400
    assert "order_by[0].field" in body["message"]


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
async def log_job(server: FakeTrainingAPI, http: aiohttp.ClientSession) -> str:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    base = int(T0 * 1000) * MS  # T0 in ns, on a millisecond boundary
    server.set_logs(
        job["id"],
        [
            LogLine(base + 0, "a", "INFO", "0"),
            (base + 999_999, "b", "DEBUG", "0"),  # same millisecond as "a"
            (base + 1 * MS, "c", None, None),
            (base + 1 * MS + 5, "d", "WARNING", "1"),
            {"timestamp_ns": base + 2 * MS, "message": "e", "level": "ERROR"},
            (base + 3 * MS, "f"),
        ],
    )
    return f"{jobs_path(project_id, job['id'])}/logs"


async def messages(http: aiohttp.ClientSession, path: str, **params: Any) -> list[str]:
    status, body = await call(http, "GET", path, params={k: str(v) for k, v in params.items()})
    assert status == 200, body
    return [line["message"] for line in body["logs"]]


async def test_logs_windows_are_inclusive_milliseconds(
    http: aiohttp.ClientSession, log_job: str
) -> None:
    start = int(T0 * 1000)
    # end defaults to now (T0 exactly), so a start of T0 is a one-millisecond window.
    assert await messages(http, log_job, start_epoch_millis=start) == ["a", "b"]
    assert await messages(http, log_job, start_epoch_millis=start, end_epoch_millis=start) == [
        "a",
        "b",
    ]
    assert await messages(
        http, log_job, start_epoch_millis=start + 1, end_epoch_millis=start + 2
    ) == ["c", "d", "e"]
    everything = await messages(
        http, log_job, start_epoch_millis=start - 5, end_epoch_millis=start + 10
    )
    assert everything == ["a", "b", "c", "d", "e", "f"]
    _, body = await call(
        http,
        "GET",
        log_job,
        params={"start_epoch_millis": str(start), "end_epoch_millis": str(start)},
    )
    first = body["logs"][0]
    assert first["timestamp"] == str(start * MS)
    assert isinstance(first["timestamp"], str)
    assert first["replica"] == "0"
    assert first["level"] == "INFO"


async def test_logs_limit_direction_and_min_level(
    http: aiohttp.ClientSession, log_job: str
) -> None:
    window = {"start_epoch_millis": int(T0 * 1000), "end_epoch_millis": int(T0 * 1000) + 10}
    assert await messages(http, log_job, limit=2, **window) == ["a", "b"]
    assert await messages(http, log_job, limit=2, direction="desc", **window) == ["f", "e"]
    assert await messages(http, log_job, direction="desc", **window) == list("fedcba")
    assert await messages(http, log_job, min_level="INFO", **window) == ["a", "d", "e"]
    assert await messages(http, log_job, min_level="WARNING", direction="desc", **window) == [
        "e",
        "d",
    ]
    assert await messages(http, log_job, min_level="DEBUG", limit=2, **window) == ["a", "b"]
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"direction": "up"}):
        status, body = await call(
            http, "GET", log_job, params={k: str(v) for k, v in {**window, **bad}.items()}
        )
        assert status == 400, bad
        assert next(iter(bad)) in body["message"]
    assert len(await messages(http, log_job, limit=1000, **window)) == 6


async def test_logs_window_bounds(
    server: FakeTrainingAPI, http: aiohttp.ClientSession, log_job: str, clock: FakeClock
) -> None:
    end = int(T0 * 1000)
    status, body = await call(
        http,
        "GET",
        log_job,
        params={"start_epoch_millis": str(end - 7 * DAY_MS - 1), "end_epoch_millis": str(end)},
    )
    assert status == 400
    assert "7 days" in body["message"]
    assert await messages(
        http, log_job, start_epoch_millis=end + 5 - 7 * DAY_MS, end_epoch_millis=end + 5
    ) == list("abcdef")  # exactly 7 days is allowed
    status, _ = await call(
        http, "GET", log_job, params={"start_epoch_millis": "10", "end_epoch_millis": "5"}
    )
    assert status == 400
    # Defaults: end = now, start = end - 30 minutes.
    assert await messages(http, log_job) == ["a", "b"]
    clock.advance(0.002)
    assert await messages(http, log_job) == ["a", "b", "c", "d", "e"]
    clock.advance(1800)  # window is now [T0 + 2 ms, T0 + 1800.002 s]
    assert await messages(http, log_job) == ["e", "f"]
    clock.advance(1)
    assert await messages(http, log_job) == []


async def test_post_logs_uses_the_same_rules(http: aiohttp.ClientSession, log_job: str) -> None:
    start = int(T0 * 1000)
    body = {"start_epoch_millis": start, "end_epoch_millis": start + 3, "direction": "desc"}
    status, got = await call(http, "POST", log_job, json={**body, "limit": 3})
    assert status == 200
    assert [line["message"] for line in got["logs"]] == ["f", "e", "d"]
    status, got = await call(http, "POST", log_job, json={**body, "limit": 5000})
    assert status == 400
    assert "limit" in got["message"]
    status, got = await call(http, "POST", log_job, json={**body, "limit": None})
    assert status == 200
    assert len(got["logs"]) == 6


async def test_running_jobs_generate_logs(clock: FakeClock) -> None:
    timings = JobTimings(created=1, deploying=1, running=5)
    async with FakeTrainingAPI(clock=clock, timings=timings, log_every=1.0) as fake:
        project = fake.add_project("p")
        job = fake.add_job(project.id)
        assert fake.logs(job.id) == []
        clock.advance(4.5)  # running since +2s: steps at +3s and +4s
        lines = fake.logs(job.id)
        assert [line.message.split(":")[0] for line in lines if line.level == "INFO"] == [
            "Pulling image hello-world",
            "Starting training",
            "step 1",
            "step 2",
        ]
        clock.advance(10)
        lines = fake.logs(job.id)
        assert lines[-1].message == "Training completed successfully"
        stamps = [line.timestamp_ns for line in lines]
        assert stamps == sorted(stamps)
        assert len({ts // MS for ts in stamps}) < len(stamps)  # several lines share a ms
        fake.generate_logs(job.id, every=None)
        fake.add_logs(job.id, [(stamps[-1] + 1, "extra")])
        assert fake.logs(job.id)[-1].message == "extra"


# -- checkpoint files ---------------------------------------------------------------------------


async def test_checkpoint_files_paging(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    path = jobs_path(project_id, job["id"]) + "/checkpoint_files"
    _, body = await call(http, "GET", path)
    assert body == {"presigned_urls": [], "next_page_token": None, "total_count": 0}
    server.set_checkpoint_files(job["id"], 2500)
    tokens: list[int | None] = []
    names: list[str] = []
    token: int | None = 0
    while token is not None:
        _, body = await call(http, "GET", path, params={"page_token": str(token)})
        assert body["total_count"] == 2500
        names += [f["relative_file_name"] for f in body["presigned_urls"]]
        token = body["next_page_token"]
        tokens.append(token)
    assert tokens == [1000, 2000, None]
    assert len(set(names)) == 2500
    _, body = await call(http, "GET", path, params={"page_size": "7", "page_token": "2495"})
    assert len(body["presigned_urls"]) == 5
    assert body["next_page_token"] is None
    _, body = await call(http, "GET", path, params={"page_token": "9999"})
    assert body["presigned_urls"] == []
    assert body["next_page_token"] is None
    for bad in ({"page_size": "0"}, {"page_token": "-1"}, {"page_size": "ten"}):
        status, body = await call(http, "GET", path, params=bad)
        assert status == 400
        assert next(iter(bad)) in body["message"]
    server.set_checkpoint_files(
        job["id"], ["a.bin", {"relative_file_name": "b.bin", "node_rank": 1}]
    )
    _, body = await call(http, "GET", path)
    assert [(f["relative_file_name"], f["node_rank"]) for f in body["presigned_urls"]] == [
        ("a.bin", 0),
        ("b.bin", 1),
    ]


async def test_repeat_page_token_and_empty_page_faults(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    job = await make_job(http, project_id)
    server.set_checkpoint_files(job["id"], 30)
    path = jobs_path(project_id, job["id"]) + "/checkpoint_files"
    params = {"page_size": "10", "page_token": "10"}
    with server.inject("repeat_page_token") as fault:
        assert fault.routes == frozenset({Route.CHECKPOINT_FILES})
        _, body = await call(http, "GET", path, params=params)
        assert body["next_page_token"] == 10
        assert len(body["presigned_urls"]) == 10
    assert not fault.active
    server.inject("empty_page", times=1)
    _, body = await call(http, "GET", path, params=params)
    assert body["presigned_urls"] == []
    assert body["next_page_token"] == 20
    _, body = await call(http, "GET", path, params=params)
    assert body["next_page_token"] == 20
    assert len(body["presigned_urls"]) == 10


# -- faults --------------------------------------------------------------------------------------


async def test_status_faults(server: FakeTrainingAPI, http: aiohttp.ClientSession) -> None:
    server.inject("status", route=Route.LIST_PROJECTS, status=503, times=1)
    async with http.get("/v1/training_projects") as response:
        assert response.status == 503
        assert "Retry-After" not in response.headers
        assert isinstance((await response.json())["message"], str)
    server.inject("status", route=Route.LIST_PROJECTS, status=429, retry_after=2.5, times=1)
    async with http.get("/v1/training_projects") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2.5"
        body = await response.json()
        assert body["retry_after"] == 2.5
        assert isinstance(body["error"], str)
    server.inject(
        "status",
        route=Route.LIST_PROJECTS,
        status=429,
        retry_after=37,
        retry_after_header=False,
        times=1,
    )
    async with http.get("/v1/training_projects") as response:
        assert "Retry-After" not in response.headers
        assert (await response.json())["retry_after"] == 37
    server.inject("status", route=Route.LIST_PROJECTS, status=429, retry_after_body=False, times=1)
    async with http.get("/v1/training_projects") as response:
        assert response.headers["Retry-After"] == "1"
        assert "retry_after" not in await response.json()
    async with http.get("/v1/training_projects") as response:
        assert response.status == 200
    outcomes = [r.outcome for r in server.requests]
    assert outcomes == ["injected_503", "injected_429", "injected_429", "injected_429", "served"]
    assert server.stats.injected["status"] == 4


async def test_status_fault_commits_only_when_asked(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    server.inject("status", route=Route.CREATE_JOB, status=500, times=1)
    status, _ = await call(http, "POST", jobs_path(project_id), json={"training_job": JOB})
    assert status == 500
    assert len(server.jobs) == 0
    server.inject("status", route=Route.CREATE_JOB, status=500, commit=True, times=1)
    status, _ = await call(http, "POST", jobs_path(project_id), json={"training_job": JOB})
    assert status == 500
    assert len(server.jobs) == 1


async def test_latency_fault(server: FakeTrainingAPI, http: aiohttp.ClientSession) -> None:
    server.inject("latency", route=Route.LIST_TEAMS, delay=0.2, times=1)
    started = time.perf_counter()
    status, _ = await call(http, "GET", "/v1/teams")
    assert status == 200
    assert time.perf_counter() - started >= 0.19
    assert server.requests[-1].fault == "latency"
    assert server.requests[-1].outcome == "served"
    project_id = await make_project(http)
    server.inject("latency", route=Route.CREATE_JOB, delay=0.5, commit=True, times=1)
    with pytest.raises(asyncio.TimeoutError):
        await call(
            http,
            "POST",
            jobs_path(project_id),
            json={"training_job": JOB},
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert len(server.jobs) == 1  # committed before the delay: the timeout was ambiguous


async def test_drop_before_commits_nothing(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    server.inject("drop_before", route=Route.CREATE_JOB, times=1)
    with pytest.raises(DROPPED):
        await call(http, "POST", jobs_path(project_id), json={"training_job": JOB})
    assert server.jobs == {}
    assert server.requests[-1].outcome == "dropped_before"
    assert server.requests[-1].status is None
    await make_job(http, project_id)  # the connection pool recovers
    assert len(server.jobs) == 1


async def test_drop_after_commit_creates_the_job_but_sends_nothing(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    server.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
    with pytest.raises(DROPPED):
        await call(
            http, "POST", jobs_path(project_id), json={"training_job": {**JOB, "name": "ghost"}}
        )
    assert [job.name for job in server.jobs.values()] == ["ghost"]
    assert server.requests[-1].outcome == "dropped_after_commit"
    assert server.stats.jobs_created == 1


async def test_drop_after_commit_sends_no_bytes(server: FakeTrainingAPI) -> None:
    server.inject("drop_after_commit", route=Route.LIST_TEAMS)
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"GET /v1/teams HTTP/1.1\r\nHost: x\r\nAuthorization: Api-Key {server.api_key}\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    try:
        received = await asyncio.wait_for(reader.read(), timeout=2)
    except ConnectionResetError:
        received = b""
    writer.close()
    assert received == b""


async def test_malformed_and_truncated_bodies(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    server.inject("malformed_json", route=Route.CREATE_JOB, times=1)
    async with http.post(jobs_path(project_id), json={"training_job": JOB}) as response:
        assert response.status == 200
        raw = await response.read()
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)
    assert len(server.jobs) == 1  # the handler ran
    server.inject("truncated_body", route=Route.CREATE_JOB, times=1)
    async with http.post(jobs_path(project_id), json={"training_job": JOB}) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert len(server.jobs) == 2
    server.inject("truncated_body", route=Route.CREATE_JOB, commit=False, times=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(jobs_path(project_id), json={"training_job": JOB}) as response:
            await response.read()
    assert len(server.jobs) == 2
    assert [r.outcome for r in server.requests[-3:]] == [
        "malformed_json",
        "truncated_body",
        "truncated_body",
    ]


async def test_fault_routing_times_probability_and_validation(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    fault = server.inject("status", route=[Route.LIST_TEAMS], status=502, times=2)
    assert (await call(http, "GET", "/v1/training_projects"))[0] == 200
    codes = [(await call(http, "GET", "/v1/teams"))[0] for _ in range(3)]
    assert codes == [502, 502, 200]
    assert fault.fired == 2
    assert not fault.active
    never = server.inject("status", status=500, probability=0.0)
    assert (await call(http, "GET", "/v1/teams"))[0] == 200
    never.remove()
    never.remove()
    everywhere = server.inject("status", status=504)
    assert (await call(http, "GET", "/v1/teams"))[0] == 504
    assert (await call(http, "GET", "/v1/training_projects"))[0] == 504
    server.clear_faults()
    assert not everywhere.active
    assert server.faults == []
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.inject("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown route"):
        server.inject("status", route="GET /nope", status=500)
    with pytest.raises(TypeError, match="status"):
        server.inject("status")
    with pytest.raises(TypeError, match="unexpected"):
        server.inject("drop_before", delay=1)
    with pytest.raises(ValueError, match="probability"):
        server.inject("drop_before", probability=1.5)


async def test_probabilities_combine_in_order(server: FakeTrainingAPI) -> None:
    server.inject("status", route=Route.LIST_TEAMS, status=500, probability=0.25)
    server.inject("status", route=Route.LIST_TEAMS, status=503, probability=0.25)
    headers = {"Authorization": f"Api-Key {server.api_key}"}
    async with aiohttp.ClientSession(server.url, headers=headers) as http:
        codes = [(await call(http, "GET", "/v1/teams"))[0] for _ in range(400)]
    assert 60 < codes.count(500) < 140
    assert 60 < codes.count(503) < 140
    assert 140 < codes.count(200) < 260


async def run_script(fake: FakeTrainingAPI) -> list[Any]:
    fake.inject("status", route=Route.CREATE_JOB, status=503, probability=0.3)
    fake.inject("drop_before", route=Route.CREATE_JOB, probability=0.2)
    results: list[Any] = []
    headers = {"Authorization": f"Api-Key {fake.api_key}"}
    async with aiohttp.ClientSession(fake.url, headers=headers) as http:
        project_id = await make_project(http)
        results.append(project_id)
        for _ in range(30):
            try:
                status, body = await call(
                    http, "POST", jobs_path(project_id), json={"training_job": JOB}
                )
            except DROPPED:
                results.append("dropped")
            else:
                results.append(body["training_job"]["id"] if status == 200 else status)
    return results


async def test_determinism_under_a_seed() -> None:
    runs = []
    for seed in (7, 7, 8):
        async with FakeTrainingAPI(seed=seed, clock=FakeClock(start=T0)) as fake:
            runs.append(await run_script(fake))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert {"dropped", 503} <= set(runs[0])


async def test_reset_restores_a_fresh_deterministic_state(server: FakeTrainingAPI) -> None:
    first = await run_script(server)
    server.reset()
    assert server.jobs == {}
    assert server.requests == []
    assert server.faults == []
    assert server.stats.requests == 0
    assert len(server.teams) == 2
    assert await run_script(server) == first


# -- rate limiting --------------------------------------------------------------------------------


async def test_rate_limiter_answers_429_with_header_and_body(clock: FakeClock) -> None:
    now = [100.0]
    async with FakeTrainingAPI(
        clock=clock, rate_limit=0.5, rate_burst=2, rate_clock=lambda: now[0]
    ) as fake:
        headers = {"Authorization": f"Api-Key {fake.api_key}"}
        async with aiohttp.ClientSession(fake.url, headers=headers) as http:
            assert (await call(http, "GET", "/v1/teams"))[0] == 200
            assert (await call(http, "GET", "/v1/teams"))[0] == 200
            async with http.get("/v1/teams") as response:
                assert response.status == 429
                assert response.headers["Retry-After"] == "2"
                body = await response.json()
            assert body["error"] == "rate limited"
            assert body["retry_after"] == pytest.approx(2.0)
            now[0] += 1.5
            async with http.get("/v1/teams") as response:
                assert response.status == 429
                assert response.headers["Retry-After"] == "1"
                assert (await response.json())["retry_after"] == pytest.approx(0.5)
            now[0] += 0.5
            assert (await call(http, "GET", "/v1/teams"))[0] == 200
        async with aiohttp.ClientSession(fake.url) as anon:
            assert (await call(anon, "GET", "/v1/teams"))[0] == 401  # not rate limited
    assert fake.stats.rate_limited == 2
    assert [r.outcome for r in fake.requests].count("rate_limited") == 2


# -- request log --------------------------------------------------------------------------------


async def test_request_log_redacts_the_key(
    server: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = await make_project(http)
    await call(http, "GET", jobs_path(project_id), params={"x": "1"})
    async with aiohttp.ClientSession(server.url) as anon:
        await call(anon, "GET", "/v1/teams", headers={"Authorization": f"Bearer {server.api_key}"})
    assert server.api_key not in repr(server.requests)
    first, second, third = server.requests
    assert first.headers["Authorization"] == "Api-Key <redacted>"
    assert third.headers["Authorization"] == "Bearer <redacted>"
    assert first.body == project_body("proj")
    assert first.route == Route.UPSERT_PROJECT
    assert (second.method, second.query, second.status) == ("GET", {"x": "1"}, 200)
    assert server.requests_for(Route.LIST_TEAMS) == [third]
    assert server.stats.served == 3
    assert server.stats.routes[Route.LIST_JOBS] == 1


async def test_request_log_limit(clock: FakeClock) -> None:
    async with FakeTrainingAPI(clock=clock, request_log_limit=10) as fake:
        headers = {"Authorization": f"Api-Key {fake.api_key}"}
        async with aiohttp.ClientSession(fake.url, headers=headers) as http:
            for _ in range(30):
                await call(http, "GET", "/v1/teams")
        assert len(fake.requests) <= 11
        assert fake.requests[-1].request_id.endswith("0000030")
        assert fake.stats.requests == 30


# -- standalone mode and pytest plugin ------------------------------------------------------------


async def test_standalone_module_serves_until_terminated() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "baseten_training_async.testing",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        "--seed",
        "3",
        "--rate-limit",
        "100",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line.decode())
        assert match, line
        key_line = await asyncio.wait_for(process.stdout.readline(), timeout=5)
        assert "cli-key" in key_line.decode()
        headers = {"Authorization": "Api-Key cli-key"}
        async with aiohttp.ClientSession(match.group(1), headers=headers) as http:
            status, body = await call(http, "POST", "/v1/training_projects", json=project_body("s"))
            assert status == 200
            assert body["training_project"]["name"] == "s"
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        await process.communicate()
    assert process.returncode == 0


async def test_pytest_plugin_fixture(fake_api: FakeTrainingAPI, fake_clock: FakeClock) -> None:
    assert fake_api.clock is fake_clock
    headers = {"Authorization": f"Api-Key {fake_api.api_key}"}
    async with aiohttp.ClientSession(fake_api.url, headers=headers) as http:
        assert (await call(http, "GET", "/v1/training_projects"))[0] == 200


async def test_server_lifecycle(clock: FakeClock) -> None:
    fake = FakeTrainingAPI(clock=clock, port=0)
    with pytest.raises(RuntimeError):
        _ = fake.url
    await fake.start()
    await fake.start()
    assert fake.url.startswith("http://127.0.0.1:")
    await fake.stop()
    await fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.url


async def test_date_header_follows_the_fake_clock(
    server: FakeTrainingAPI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    from email.utils import parsedate_to_datetime

    clock.advance(3600)
    async with http.get("/v1/training_projects") as response:
        date = parsedate_to_datetime(response.headers["Date"])
    assert int(date.timestamp()) == int(clock.now())
