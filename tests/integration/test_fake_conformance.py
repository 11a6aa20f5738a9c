"""Every route of the fake answers bodies that validate against the OpenAPI spec.

Validation uses ``jsonschema`` (Draft 2020-12) with a registry holding the whole spec
document, independently of the fake's own validator.
"""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route, openapi_spec

SPEC_URI = "urn:baseten:management-training-openapi"
SPEC = openapi_spec()
REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))
T0 = 1_700_000_000.0
# The published spec, when the repository sits beside its shared/ folder.
SHARED_SPEC = (
    Path(__file__).resolve().parents[3] / "shared/spec/baseten-management-training.openapi.json"
)
P = "/v1/training_projects/{training_project_id}"
J = P + "/jobs/{training_job_id}"


def operation(route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    op: dict[str, Any] = SPEC["paths"][path][method.lower()]  # type: ignore[index]
    return op


def response_validator(route: str) -> Draft202012Validator:
    ref = operation(route)["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    return Draft202012Validator({"$ref": SPEC_URI + ref}, registry=REGISTRY)


def request_validator(route: str) -> Draft202012Validator:
    ref = operation(route)["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return Draft202012Validator({"$ref": SPEC_URI + ref}, registry=REGISTRY)


def assert_conforms(route: str, body: Any) -> None:
    errors = sorted(response_validator(route).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def assert_error_body(body: Any) -> None:
    assert isinstance(body, dict)
    assert isinstance(body.get("message"), str) or isinstance(body.get("error"), str), body


@dataclass
class World:
    """A fake with one of everything, and the ids to reach it."""

    api: FakeTrainingAPI
    http: aiohttp.ClientSession
    clock: FakeClock
    ids: dict[str, str]

    def path(self, template: str) -> str:
        return template.format(**self.ids)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.path(path), **kwargs) as response:
            assert response.content_type == "application/json"
            assert response.headers["x-request-id"]
            return response.status, await response.json()


RICH_JOB: dict[str, Any] = {
    "image": {
        "base_image": "registry.example/train:1",
        "docker_auth": {
            "registry": "registry.example",
            "auth_method": "REGISTRY_SECRET",
            "registry_secret_docker_auth": {"secret_ref": {"name": "creds"}},
        },
    },
    "compute": {
        "node_count": 2,
        "cpu_count": 8,
        "memory": "64Gi",
        "accelerator": {"accelerator": "H100", "count": 4},
        "availability_model": "spot",
    },
    "runtime": {
        "start_commands": ["python train.py"],
        "environment_variables": {"A": "1", "HF_TOKEN": {"name": "hf"}},
        "artifacts": [{"s3_bucket": "b", "s3_key": "k.tgz"}],
        "cache_config": {"enabled": True},
        "checkpointing_config": {"enabled": True, "checkpoint_path": "/ckpt"},
        "load_checkpoint_config": {
            "enabled": True,
            "checkpoints": [
                {"typ": "baseten_latest_checkpoint", "project_name": "p"},
                {"typ": "baseten_named_checkpoint", "checkpoint_name": "c"},
                {"typ": "loops_checkpoint", "run_id": "r", "checkpoint_name": "c"},
            ],
        },
    },
    "name": "rich",
    "interactive_session": {"trigger": "on_demand", "timeout_minutes": 60},
    "weights": [{"source": "hf://m/n@main", "mount_location": "/models"}],
    "truss_user_env": {"git_info": None, "python_version": "3.11"},
    "enable_baseten_workdir": True,
    "priority": 3,
}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock(start=T0)
    async with FakeTrainingAPI(clock=clock, capacity=1) as api:
        headers = {"Authorization": f"Api-Key {api.api_key}"}
        async with aiohttp.ClientSession(api.url, headers=headers) as http:
            team = next(t for t in api.teams.values() if not t.default)
            project = api.add_project("conformance", team_id=team.id)
            running = api.add_job(project.id, RICH_JOB)
            pending = api.add_job(project.id)
            api.set_checkpoint_files(running.id, 25)
            api.set_checkpoints(
                running.id, [{"checkpoint_type": "lora", "lora_adapter_config": {"r": 8}}, {}]
            )
            clock.advance(8)  # running is RUNNING; pending still waits for capacity
            ids = {
                "team_id": team.id,
                "training_project_id": project.id,
                "training_job_id": running.id,
                "pending_job_id": pending.id,
                "session_id": next(iter(running.sessions)),
            }
            yield World(api=api, http=http, clock=clock, ids=ids)


Call = tuple[str, str, dict[str, Any]]
"""(method, path template, request kwargs)."""

SUCCESS: dict[str, list[Call]] = {
    Route.LIST_TEAMS: [("GET", "/v1/teams", {})],
    Route.UPSERT_TEAM_PROJECT: [
        (
            "POST",
            "/v1/teams/{team_id}/training_projects",
            {"json": {"training_project": {"name": "t"}}},
        )
    ],
    Route.LIST_PROJECTS: [("GET", "/v1/training_projects", {})],
    Route.UPSERT_PROJECT: [
        ("POST", "/v1/training_projects", {"json": {"training_project": {"name": "conformance"}}}),
        ("POST", "/v1/training_projects", {"json": {"training_project": {"name": "fresh"}}}),
    ],
    Route.GET_PROJECT: [("GET", P, {})],
    Route.DELETE_PROJECT: [("DELETE", P, {})],
    Route.CACHE_SUMMARY: [("GET", P + "/cache/summary", {})],
    Route.LIST_JOBS: [("GET", P + "/jobs", {})],
    Route.CREATE_JOB: [
        ("POST", P + "/jobs", {"json": {"training_job": RICH_JOB}}),
        ("POST", P + "/jobs", {"json": {"training_job": {"image": {"base_image": "x"}}}}),
    ],
    Route.GET_JOB: [("GET", J, {}), ("GET", P + "/jobs/{pending_job_id}", {})],
    Route.DELETE_JOB: [("DELETE", J, {})],
    Route.UPDATE_JOB: [
        (
            "PATCH",
            P + "/jobs/{pending_job_id}",
            {"json": {"priority": 9, "availability_model": "spot"}},
        ),
    ],
    Route.DOWNLOAD_JOB: [("GET", J + "/download", {})],
    Route.RECREATE_JOB: [("POST", J + "/recreate", {})],
    Route.GET_LOGS: [
        ("GET", J + "/logs", {}),
        ("GET", J + "/logs", {"params": {"direction": "desc", "min_level": "DEBUG", "limit": "3"}}),
    ],
    Route.POST_LOGS: [("POST", J + "/logs", {"json": {"limit": 2, "direction": "asc"}})],
    Route.GET_METRICS: [
        ("GET", J + "/metrics", {}),
        ("GET", J + "/metrics", {"params": {"step_seconds": "2"}}),
        ("GET", P + "/jobs/{pending_job_id}/metrics", {}),
    ],
    Route.POST_METRICS: [("POST", J + "/metrics", {"json": {"step_seconds": 1}})],
    Route.STOP_JOB: [("POST", J + "/stop", {"json": {}}), ("POST", J + "/stop", {})],
    Route.CHECKPOINTS: [("GET", J + "/checkpoints", {})],
    Route.CHECKPOINT_FILES: [
        ("GET", J + "/checkpoint_files", {}),
        ("GET", J + "/checkpoint_files", {"params": {"page_size": "10", "page_token": "20"}}),
    ],
    Route.AUTH_CODES: [("GET", J + "/auth_codes", {})],
    Route.PATCH_INTERACTIVE_SESSION: [
        ("PATCH", J + "/interactive_sessions/{session_id}", {"json": {"timeout_minutes": 30}}),
        ("PATCH", J + "/interactive_sessions/{session_id}", {"json": {"trigger": "on_failure"}}),
        ("PATCH", J + "/interactive_sessions/{session_id}", {"json": {}}),
    ],
    Route.SSH_SIGN: [
        (
            "POST",
            J + "/ssh/sign",
            {"json": {"public_key": "ssh-ed25519 AAAA u@h", "replica_id": "0"}},
        )
    ],
    Route.SEARCH_JOBS: [
        ("POST", "/v1/training_jobs/search", {"json": {}}),
        (
            "POST",
            "/v1/training_jobs/search",
            {"json": {"statuses": ["TRAINING_JOB_RUNNING"], "project_id": "{training_project_id}"}},
        ),
    ],
    Route.CAPACITY: [("GET", "/v1/training/capacity", {})],
    Route.SET_CAPACITY: [
        (
            "PATCH",
            "/v1/training/capacity",
            {"json": {"team_id": "{team_id}", "gpu_type": "H100", "max_gpus": 16}},
        )
    ],
    Route.QUEUE_CONTEXT: [
        ("GET", "/v1/training/jobs/{training_job_id}/queue_context", {}),
        ("GET", "/v1/training/jobs/{pending_job_id}/queue_context", {}),
    ],
    Route.BLOB_CREDENTIALS: [("GET", "/v1/blobs/credentials/train", {})],
}

# Requests the fake must refuse, per route: (expected status, method, path, kwargs).
ERRORS: dict[str, list[tuple[int, str, str, dict[str, Any]]]] = {
    Route.UPSERT_TEAM_PROJECT: [
        (
            404,
            "POST",
            "/v1/teams/nope/training_projects",
            {"json": {"training_project": {"name": "x"}}},
        ),
        (400, "POST", "/v1/teams/{team_id}/training_projects", {"json": {"training_project": {}}}),
    ],
    Route.UPSERT_PROJECT: [
        (400, "POST", "/v1/training_projects", {"json": {"training_project": {"name": 1}}}),
        (400, "POST", "/v1/training_projects", {"json": {"name": "x"}}),
    ],
    Route.GET_PROJECT: [(404, "GET", "/v1/training_projects/nope", {})],
    Route.DELETE_PROJECT: [(404, "DELETE", "/v1/training_projects/nope", {})],
    Route.CACHE_SUMMARY: [(404, "GET", "/v1/training_projects/nope/cache/summary", {})],
    Route.LIST_JOBS: [(404, "GET", "/v1/training_projects/nope/jobs", {})],
    Route.CREATE_JOB: [
        (
            404,
            "POST",
            "/v1/training_projects/nope/jobs",
            {"json": {"training_job": {"image": {"base_image": "x"}}}},
        ),
        (400, "POST", P + "/jobs", {"json": {"training_job": {"image": {"base_image": 3}}}}),
    ],
    Route.GET_JOB: [(404, "GET", P + "/jobs/nope", {})],
    Route.DELETE_JOB: [(404, "DELETE", P + "/jobs/nope", {})],
    Route.UPDATE_JOB: [
        (404, "PATCH", P + "/jobs/nope", {"json": {"priority": 1}}),
        (400, "PATCH", J, {"json": {"priority": 1}}),  # not PENDING
        (400, "PATCH", J, {"json": {}}),
    ],
    Route.DOWNLOAD_JOB: [(404, "GET", P + "/jobs/nope/download", {})],
    Route.RECREATE_JOB: [(404, "POST", P + "/jobs/nope/recreate", {})],
    Route.GET_LOGS: [
        (404, "GET", P + "/jobs/nope/logs", {}),
        (400, "GET", J + "/logs", {"params": {"limit": "0"}}),
        (400, "GET", J + "/logs", {"params": {"min_level": "LOUD"}}),
    ],
    Route.POST_LOGS: [(400, "POST", J + "/logs", {"json": {"limit": 1001}})],
    Route.GET_METRICS: [
        (404, "GET", P + "/jobs/nope/metrics", {}),
        (400, "GET", J + "/metrics", {"params": {"step_seconds": "often"}}),
    ],
    Route.POST_METRICS: [(400, "POST", J + "/metrics", {"json": {"step_seconds": "1"}})],
    Route.STOP_JOB: [
        (404, "POST", P + "/jobs/nope/stop", {"json": {}}),
        (400, "POST", J + "/stop", {"json": [True]}),
    ],
    Route.CHECKPOINTS: [(404, "GET", P + "/jobs/nope/checkpoints", {})],
    Route.CHECKPOINT_FILES: [
        (404, "GET", P + "/jobs/nope/checkpoint_files", {}),
        (400, "GET", J + "/checkpoint_files", {"params": {"page_size": "0"}}),
    ],
    Route.AUTH_CODES: [(404, "GET", P + "/jobs/nope/auth_codes", {})],
    Route.PATCH_INTERACTIVE_SESSION: [
        (404, "PATCH", J + "/interactive_sessions/nope", {"json": {}}),
        (400, "PATCH", J + "/interactive_sessions/{session_id}", {"json": {"trigger": "never"}}),
    ],
    Route.SSH_SIGN: [
        (404, "POST", P + "/jobs/nope/ssh/sign", {"json": {"public_key": "k"}}),
        (400, "POST", J + "/ssh/sign", {"json": {"public_key": None}}),
    ],
    Route.SEARCH_JOBS: [
        (400, "POST", "/v1/training_jobs/search", {"json": {"statuses": "RUNNING"}}),
    ],
    Route.QUEUE_CONTEXT: [(404, "GET", "/v1/training/jobs/nope/queue_context", {})],
    Route.SET_CAPACITY: [
        (
            404,
            "PATCH",
            "/v1/training/capacity",
            {"json": {"team_id": "nope", "gpu_type": "H100", "max_gpus": 1}},
        ),
        (
            400,
            "PATCH",
            "/v1/training/capacity",
            {"json": {"team_id": "{team_id}", "gpu_type": "H100", "max_gpus": -1}},
        ),
        (400, "PATCH", "/v1/training/capacity", {"json": {"gpu_type": "H100", "max_gpus": 1}}),
    ],
}


def fill(world: World, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Substitute the project and team id placeholders inside JSON bodies."""
    text = json.dumps(kwargs).replace("{training_project_id}", world.ids["training_project_id"])
    text = text.replace("{team_id}", world.ids["team_id"])
    filled: dict[str, Any] = json.loads(text)
    return filled


def test_routes_match_the_spec() -> None:
    spec_routes = {
        f"{method.upper()} {path}"
        for path, item in SPEC["paths"].items()  # type: ignore[attr-defined]
        for method in item
        if method != "parameters"
    }
    assert set(Route.ALL) == spec_routes
    assert len(Route.ALL) == len(spec_routes) == 29
    assert set(SUCCESS) == spec_routes


def unsourced_changes(published: Any, bundled: Any, where: str = "") -> list[str]:
    """Differences between the two documents not under an element marked ``x-source``."""
    if isinstance(bundled, dict) and "x-source" in bundled:
        return []
    if isinstance(published, dict) and isinstance(bundled, dict):
        changes = [f"{where}/{key} removed" for key in published if key not in bundled]
        for key, value in bundled.items():
            if key == "x-sources" and where == "/info":
                continue
            if key not in published:
                items = value if isinstance(value, list) else [value]
                if not all(isinstance(item, dict) and "x-source" in item for item in items):
                    changes.append(f"{where}/{key} added")
            else:
                changes += unsourced_changes(published[key], value, f"{where}/{key}")
        return changes
    return [] if published == bundled else [f"{where} changed"]


def test_bundled_spec_is_the_published_spec_plus_sourced_additions() -> None:
    bundled = openapi_spec()
    assert len(bundled["paths"]) == 21  # type: ignore[arg-type]
    schemas = bundled["components"]["schemas"]  # type: ignore[index]
    sourced = {name for name, schema in schemas.items() if "x-source" in schema}
    assert len(schemas) == 95
    assert {
        "AwsAssumeRoleDockerAuthV1",
        "TrainingWeightAuthV1",
        "TrainingWeightAuthMethod",
        "PatchTeamTrainingGpuCapacityRequestV1",
        "PatchTeamTrainingGpuCapacityResponseV1",
    } <= sourced
    patch = bundled["paths"]["/v1/training/capacity"]["patch"]  # type: ignore[index]
    assert patch["x-source"].startswith("baseten 0.13.1")
    if SHARED_SPEC.exists():
        assert unsourced_changes(json.loads(SHARED_SPEC.read_text()), bundled) == []


@pytest.mark.parametrize("route", Route.ALL)
async def test_success_responses_conform(world: World, route: str) -> None:
    for method, path, kwargs in SUCCESS[route]:
        status, body = await world.request(method, path, **fill(world, kwargs))
        assert status == 200, (method, path, body)
        assert_conforms(route, body)
        world.clock.advance(5)  # later calls see other statuses


@pytest.mark.parametrize("route", Route.ALL)
async def test_error_responses_are_json_errors(world: World, route: str) -> None:
    method, path = route.split(" ", 1)
    async with aiohttp.ClientSession(world.api.url) as anon:
        async with anon.request(method, world.path(path), json={}) as response:
            assert response.status == 401
            assert_error_body(await response.json())
    for expected, method, path, kwargs in ERRORS.get(route, []):
        status, body = await world.request(method, path, **fill(world, kwargs))
        assert status == expected, (method, path, body)
        assert_error_body(body)
    world.api.inject("status", route=route, status=429, retry_after=3, times=1)
    world.api.inject("status", route=route, status=503, times=1)
    for expected in (429, 503):
        method, path, kwargs = SUCCESS[route][0]
        status, body = await world.request(method, path, **fill(world, kwargs))
        assert status == expected
        assert_error_body(body)


async def test_responses_conform_across_the_job_lifecycle(world: World) -> None:
    """Job bodies validate in every status, including failures and stops."""
    api = world.api
    api.capacity = None
    project_id = world.ids["training_project_id"]
    failing = api.add_job(project_id, {"image": {"base_image": "x"}, "name": "to-fail"})
    stopped = api.add_job(project_id)
    await world.request("POST", P + f"/jobs/{stopped.id}/stop", json={})
    for _ in range(6):
        world.clock.advance(3)
        for job_id in (failing.id, stopped.id, world.ids["training_job_id"]):
            status, body = await world.request("GET", P + f"/jobs/{job_id}")
            assert status == 200
            assert_conforms(Route.GET_JOB, body)
    status, body = await world.request("GET", "/v1/training_projects")
    assert_conforms(Route.LIST_PROJECTS, body)
    status, body = await world.request(
        "GET", P + f"/jobs/{failing.id}/logs", params={"start_epoch_millis": str(int(T0 * 1000))}
    )
    assert_conforms(Route.GET_LOGS, body)
    assert body["logs"][-1]["level"] == "ERROR"


def python_sample_body(route: str) -> Any:
    for sample in operation(route).get("x-codeSamples", []):
        if sample["lang"] == "python" and "json=" in sample["source"]:
            literal = sample["source"].split("json=", 1)[1].split("\n)", 1)[0]
            return ast.literal_eval(literal.strip())
    return None


BODY_ROUTES = [route for route in Route.ALL if "requestBody" in operation(route)]


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_fake_request_validation_agrees_with_jsonschema_on_spec_samples(
    world: World, route: str
) -> None:
    body = python_sample_body(route)
    assert body is not None
    valid = request_validator(route).is_valid(body)
    method, path = route.split(" ", 1)
    if route == Route.UPDATE_JOB:
        path = P + "/jobs/{pending_job_id}"
    status, answer = await world.request(method, path, json=body)
    rejected_by_schema = status == 400 and "Invalid request body" in answer["message"]
    assert rejected_by_schema == (not valid), (status, answer)
    if status == 200:
        assert_conforms(route, answer)


def test_error_cases_cover_every_route_with_path_ids_or_bodies() -> None:
    needing = {route for route in Route.ALL if "{" in route or "requestBody" in operation(route)}
    missing = needing - set(ERRORS)
    assert not missing, missing


def test_helpers_reject_invalid_bodies() -> None:
    with pytest.raises(AssertionError):
        assert_conforms(Route.GET_JOB, {"training_job": {}})
    with pytest.raises(AssertionError):
        assert_error_body({"detail": "x"})
