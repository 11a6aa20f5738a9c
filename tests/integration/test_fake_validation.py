"""The fake validates like the real API: extras kept, nulls accepted, 4xx for bad input."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route

T0 = 1_700_000_000.0


@pytest.fixture
async def api() -> AsyncIterator[FakeTrainingAPI]:
    async with FakeTrainingAPI(clock=FakeClock(start=T0), validate_responses=True) as fake:
        yield fake


@pytest.fixture
async def http(api: FakeTrainingAPI) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Api-Key {api.api_key}"}
    async with aiohttp.ClientSession(api.url, headers=headers) as session:
        yield session


async def send(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, path, **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


def jobs_path(project_id: str, job_id: str | None = None) -> str:
    path = f"/v1/training_projects/{project_id}/jobs"
    return path if job_id is None else f"{path}/{job_id}"


async def test_extra_fields_are_accepted_and_kept_in_the_request_log(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    team = next(iter(api.teams))
    status, body = await send(
        http,
        "POST",
        f"/v1/teams/{team}/training_projects",
        json={"training_project": {"name": "p", "team_name": "Research"}},
    )
    assert status == 200
    project_id = body["training_project"]["id"]
    job = {"image": {"base_image": "x"}, "workspace": {"files": 3}, "name": "extra"}
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": job})
    assert status == 200
    job_id = body["training_job"]["id"]
    assert api.requests_for(Route.CREATE_JOB)[-1].body == {"training_job": job}
    assert api.jobs[job_id].spec["workspace"] == {"files": 3}
    api.capacity = 0  # keep the next job pending so its priority can change
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": job})
    pending = body["training_job"]["id"]
    status, body = await send(
        http, "PATCH", jobs_path(project_id, pending), json={"priority": 2, "future": True}
    )
    assert status == 200
    assert api.requests_for(Route.UPDATE_JOB)[-1].body == {"priority": 2, "future": True}


async def test_null_is_accepted_for_every_optional_field(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("nulls").id
    job: dict[str, object] = {
        "image": {"base_image": "hello-world", "docker_auth": None},
        "compute": None,
        "runtime": None,
        "weights": None,
        "name": None,
        "truss_user_env": None,
        "interactive_session": None,
        "enable_baseten_workdir": None,
        "priority": None,
    }
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": job})
    assert status == 200, body
    runtime = {
        "start_commands": None,
        "environment_variables": None,
        "artifacts": None,  # the docs' create example sends this
        "enable_cache": None,
        "cache_config": None,
        "checkpointing_config": None,
        "load_checkpoint_config": {"enabled": True, "checkpoints": None, "download_folder": None},
    }
    compute = {
        "node_count": None,
        "cpu_count": None,
        "memory": None,
        "accelerator": None,
        "availability_model": None,
    }
    job = {"image": {"base_image": "x"}, "runtime": runtime, "compute": compute}
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": job})
    assert status == 200, body
    stored = api.jobs[body["training_job"]["id"]].spec
    assert stored["compute"]["node_count"] == 1  # null taken as absent: the default
    assert stored["runtime"]["load_checkpoint_config"]["download_folder"]
    assert api.requests_for(Route.CREATE_JOB)[-1].body == {"training_job": job}  # as sent
    # A required field stays required, null or not.
    status, body = await send(
        http, "POST", jobs_path(project_id), json={"training_job": {"image": None}}
    )
    assert status == 400
    assert "training_job.image" in body["message"]


@pytest.mark.parametrize(
    ("training_job", "field"),
    [
        ({"interactive_session": {"timeout_minutes": 4_300_000_000}}, "timeout_minutes"),
        ({"interactive_session": {"timeout_minutes": -2}}, "timeout_minutes"),
        ({"compute": {"memory": "9" * 400 + "Gi"}}, "compute.memory"),
        ({"compute": {"node_count": 0}}, "compute.node_count"),
        ({"compute": {"node_count": 10**9}}, "compute.node_count"),
        ({"compute": {"accelerator": {"accelerator": "H100", "count": -1}}}, "count"),
    ],
)
async def test_out_of_range_job_values_are_400(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, training_job: dict[str, Any], field: str
) -> None:
    project_id = api.add_project("ranges").id
    body = {"training_job": {"image": {"base_image": "x"}, **training_job}}
    status, answer = await send(http, "POST", jobs_path(project_id), json=body)
    assert status == 400
    assert field in answer["message"]
    assert api.jobs == {}


async def test_spec_allowed_edge_values_are_accepted(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("edges").id
    for extra in (
        {"interactive_session": {"timeout_minutes": -1}},
        {"interactive_session": {"timeout_minutes": 0}},
        {"compute": {"accelerator": {"accelerator": "H100", "count": 0}}},
    ):
        body = {"training_job": {"image": {"base_image": "x"}, **extra}}
        status, answer = await send(http, "POST", jobs_path(project_id), json=body)
        assert status == 200, answer


async def test_session_patch_refuses_timeouts_past_what_it_can_hold(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("sessions").id
    job = api.add_job(
        project_id, {"image": {"base_image": "x"}, "interactive_session": {"trigger": "on_startup"}}
    )
    session_id = next(iter(job.sessions))
    path = f"{jobs_path(project_id, job.id)}/interactive_sessions/{session_id}"
    before = dict(job.sessions[session_id])
    for minutes in (4_300_000_000, 10**30, -5, 0):
        status, body = await send(http, "PATCH", path, json={"timeout_minutes": minutes})
        assert status == 400, minutes
        assert "timeout_minutes" in body["message"]
    # -1 (ten years) is fine a few hundred times, then the expiry would pass 9999.
    statuses = []
    for _ in range(900):
        status, _ = await send(http, "PATCH", path, json={"timeout_minutes": -1})
        statuses.append(status)
        if status != 200:
            break
    assert statuses[0] == 200
    assert statuses[-1] == 400
    assert job.sessions[session_id]["trigger"] == before["trigger"]


@pytest.mark.parametrize(
    "params",
    [
        {"start_epoch_millis": 10**20},
        {"end_epoch_millis": 10**20},
        {"start_epoch_millis": -(10**20)},
        {"step_seconds": 10**20},
        {"start_epoch_millis": 0, "end_epoch_millis": 253_402_300_799_999, "step_seconds": 1},
    ],
)
async def test_huge_metrics_and_log_parameters_are_400(
    api: FakeTrainingAPI, http: aiohttp.ClientSession, params: dict[str, int]
) -> None:
    project_id = api.add_project("metrics").id
    job = api.add_job(project_id)
    base = jobs_path(project_id, job.id)
    status, body = await send(http, "POST", f"{base}/metrics", json=params)
    if "step_seconds" in params and params["step_seconds"] == 1:
        assert status == 200  # huge window, but bounded to 1000 points
        assert len(body["gpu_utilization"]["0"] if body["gpu_utilization"] else []) <= 1000
        return
    assert status == 400, body
    query = {key: str(value) for key, value in params.items()}
    status, body = await send(http, "GET", f"{base}/metrics", params=query)
    assert status == 400, body
    window = {k: v for k, v in params.items() if k != "step_seconds"}
    if window:
        status, body = await send(http, "POST", f"{base}/logs", json=window)
        assert status == 400, body


async def test_deeply_nested_json_is_400(api: FakeTrainingAPI, http: aiohttp.ClientSession) -> None:
    for depth in (70, 1_000, 100_000):
        raw = b'{"training_project": ' + b"[" * depth + b"]" * depth + b"}"
        status, body = await send(http, "POST", "/v1/training_projects", data=raw)
        assert status == 400, depth
        assert "nested" in body["message"] or "JSON" in body["message"]
    assert api.projects == {}


async def test_body_over_16_mib_is_413(api: FakeTrainingAPI, http: aiohttp.ClientSession) -> None:
    raw = b'{"training_project": {"name": "' + b"x" * (16 * 1024 * 1024 + 10) + b'"}}'
    status, body = await send(
        http,
        "POST",
        "/v1/training_projects",
        data=io.BytesIO(raw),
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert "16 MiB" in body["message"]
    assert api.projects == {}


async def test_wrong_method_is_405_with_allow(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("methods").id
    for method, path, allowed in [
        ("PUT", "/v1/training_projects", "GET, POST"),
        ("DELETE", "/v1/teams", "GET"),
        ("GET", "/v1/training_jobs/search", "POST"),
        ("POST", f"/v1/training_projects/{project_id}", "DELETE, GET"),
    ]:
        async with http.request(method, path) as response:
            assert response.status == 405, (method, path)
            assert response.headers["Allow"] == allowed
            assert "not allowed" in (await response.json())["message"]
    status, _ = await send(http, "GET", "/v1/no/such/path")
    assert status == 404


# -- what the refreshed spec adds (fields the official client 0.13.1 knows) ---------------


async def test_newer_request_fields_are_served(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("newer").id
    weight = {
        "source": "cw://bucket/models/llama",
        "mount_location": "/models",
        "auth": {
            "auth_method": "AWS_ASSUME_ROLE",
            "aws_assume_role_arn": "arn:aws:iam::123:role/weights",
            "aws_assume_role_region": "us-east-1",
        },
    }
    job: dict[str, Any] = {
        "image": {
            "base_image": "123.dkr.ecr.us-east-1.amazonaws.com/train:1",
            "docker_auth": {
                "registry": "123.dkr.ecr.us-east-1.amazonaws.com",
                "auth_method": "AWS_ASSUME_ROLE",
                "aws_assume_role_docker_auth": {
                    "role_arn": "arn:aws:iam::123:role/pull",
                    "region": "us-east-1",
                },
            },
        },
        "compute": {
            "node_count": 2,
            "accelerator": {"accelerator": "H100", "count": 4},
            "availability_model": "spot",
        },
        "weights": [weight],
    }
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": job})
    assert status == 200, body
    assert body["training_job"]["node_count"] == 2
    assert body["training_job"]["availability_model"] == "spot"
    bad = {**job, "weights": [{**weight, "auth": {"auth_method": "MAGIC"}}]}
    status, body = await send(http, "POST", jobs_path(project_id), json={"training_job": bad})
    assert status == 400
    assert "weights[0].auth.auth_method" in body["message"]


async def test_capacity_counts_spot_and_dedicated_and_can_be_set_per_team(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("capacity").id
    for model, count in (("spot", 4), ("dedicated", 2)):
        compute = {
            "accelerator": {"accelerator": "H100", "count": count},
            "availability_model": model,
        }
        api.add_job(project_id, {"image": {"base_image": "x"}, "compute": compute})
    status, body = await send(http, "GET", "/v1/training/capacity")
    assert status == 200
    (h100,) = [row for row in body["gpu_capacities"] if row["gpu_type"] == "H100"]
    assert (h100["usage_count"], h100["spot_usage_count"], h100["dedicated_usage_count"]) == (
        6,
        4,
        2,
    )
    team_id = list(api.teams)[1]
    status, body = await send(
        http,
        "PATCH",
        "/v1/training/capacity",
        json={"team_id": team_id, "gpu_type": "A100", "max_gpus": 24},
    )
    assert status == 200, body
    assert body["team_gpu_capacity"]["limit"] == 24
    assert body["team_gpu_capacity"]["team_id"] == team_id
    status, body = await send(http, "GET", "/v1/training/capacity")
    rows = [r for r in body["team_gpu_capacities"] if r["team_id"] == team_id]
    assert [(r["gpu_type"], r["limit"]) for r in rows] == [("A100", 24)]


async def test_update_changes_availability_model_of_a_pending_job_only(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    project_id = api.add_project("update").id
    running = api.add_job(project_id)
    api.capacity = 1
    pending = api.add_job(project_id)
    status, body = await send(
        http, "PATCH", jobs_path(project_id, pending.id), json={"availability_model": "spot"}
    )
    assert status == 200, body
    assert body["training_job"]["availability_model"] == "spot"
    assert body["training_job"]["priority"] == 0  # priority is optional now
    status, body = await send(
        http, "PATCH", jobs_path(project_id, running.id), json={"availability_model": "spot"}
    )
    assert status == 400
    assert "PENDING" in body["message"]
    status, body = await send(http, "PATCH", jobs_path(project_id, pending.id), json={})
    assert status == 400
    assert "at least one" in body["message"]


async def test_teams_filter_by_exact_name(
    api: FakeTrainingAPI, http: aiohttp.ClientSession
) -> None:
    status, body = await send(http, "GET", "/v1/teams", params={"name": "Research"})
    assert status == 200
    assert [team["name"] for team in body["teams"]] == ["Research"]
    status, body = await send(http, "GET", "/v1/teams", params={"name": "research"})
    assert body["teams"] == []
    status, body = await send(http, "GET", "/v1/teams")
    assert len(body["teams"]) == len(api.teams)
