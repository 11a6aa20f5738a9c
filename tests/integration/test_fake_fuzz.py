"""Fuzz every route of the fake: no un-injected 5xx, every body in the spec's shapes.

Hypothesis draws a bounded number of requests (derandomized, so every run sends the
same cases): valid bodies with one field replaced, removed or added, random JSON,
raw bytes, deep nesting, huge numbers, random query strings, ids and methods. The
server runs on its own loop in a thread so each example is one blocking round trip.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route, openapi_spec

EXAMPLES = int(os.environ.get("FAKE_FUZZ_EXAMPLES", "300"))  # bounded; raise to explore
SPEC_URI = "urn:baseten:management-training-openapi"
SPEC: dict[str, Any] = openapi_spec()
REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))
METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT")
HUGE = (10**20, -(10**20), 2**63, 1e308, -1e308, 4_300_000_000, 2**31, -1, 0)
JOB = {
    "name": "fuzz",
    "image": {"base_image": "x", "docker_auth": None},
    "compute": {
        "node_count": 2,
        "cpu_count": 2,
        "memory": "4Gi",
        "accelerator": {"accelerator": "H100", "count": 2},
        "availability_model": "spot",
    },
    "runtime": {
        "start_commands": ["python train.py"],
        "environment_variables": {"A": "1", "S": {"name": "secret"}},
        "artifacts": [{"s3_bucket": "b", "s3_key": "k"}],
        "checkpointing_config": {"enabled": True},
        "load_checkpoint_config": {
            "enabled": True,
            "checkpoints": [{"typ": "baseten_latest_checkpoint", "project_name": "p"}],
        },
    },
    "interactive_session": {"trigger": "on_startup", "timeout_minutes": 60},
    "weights": [{"source": "hf://a/b", "mount_location": "/m"}],
    "priority": 1,
}
VALID_BODIES: dict[str, Any] = {
    "UpsertTrainingProjectRequestV1": {"training_project": {"name": "fuzz"}},
    "CreateTrainingJobRequestV1": {"training_job": JOB},
    "UpdateTrainingJobRequestV1": {"priority": 3},
    "GetTrainingJobLogsRequestV1": {"limit": 10, "direction": "desc", "min_level": "INFO"},
    "GetTrainingJobMetricsRequestV1": {"step_seconds": 5},
    "StopTrainingJobRequestV1": {},
    "PatchInteractiveSessionRequestV1": {"timeout_minutes": 5, "trigger": "on_demand"},
    "SignSSHCertificateRequestV1": {"public_key": "ssh-ed25519 AAAA fuzz"},
    "PatchTeamTrainingGpuCapacityRequestV1": {
        "team_id": "<team_id>",
        "gpu_type": "H100",
        "max_gpus": 16,
    },
    "SearchTrainingJobsRequestV1": {
        "statuses": ["TRAINING_JOB_RUNNING"],
        "order_by": [{"field": "created_at", "order": "asc"}],
    },
}
QUERY_VALUES = st.one_of(
    st.integers(min_value=-(10**22), max_value=10**22).map(str),
    st.sampled_from(["asc", "desc", "INFO", "ERROR", "", "1e9", "nan", "-1", "0"]),
    st.text(max_size=12),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def operation(route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    op: dict[str, Any] = SPEC["paths"][path][method.lower()]
    return op


def request_schema(route: str) -> str | None:
    body = operation(route).get("requestBody")
    if body is None:
        return None
    ref: str = body["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


RESPONSE_VALIDATORS = {
    route: Draft202012Validator(
        {
            "$ref": SPEC_URI
            + operation(route)["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        },
        registry=REGISTRY,
    )
    for route in Route.ALL
}
MISSING_BODIES = {request_schema(route) for route in Route.ALL} - set(VALID_BODIES) - {None}
assert not MISSING_BODIES, f"add a valid body for {MISSING_BODIES}"


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths_in(item, (*prefix, index))


def mutate(document: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    document = msgspec.json.decode(msgspec.json.encode(document))  # deep copy
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"extra_{last}"] = value
    return document


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    route = draw(st.sampled_from(Route.ALL))
    method, template = route.split(" ", 1)
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(METHODS))
    ids: dict[str, str] = {}
    for name in ("team_id", "training_project_id", "training_job_id", "session_id"):
        if draw(st.integers(0, 9)) < 8:
            ids[name] = f"{{{name}}}"  # the real id, filled in by the server thread
        else:
            ids[name] = draw(
                st.one_of(
                    st.sampled_from(["missing", "%00", "..", "a" * 300]),
                    st.text(min_size=1, max_size=10).map(lambda t: urllib.parse.quote(t, safe="")),
                )
            )
    path = template
    for name, value in ids.items():
        path = path.replace(f"{{{name}}}", value if value != f"{{{name}}}" else f"<{name}>")
    query = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "start_epoch_millis",
                    "end_epoch_millis",
                    "limit",
                    "direction",
                    "min_level",
                    "step_seconds",
                    "page_size",
                    "page_token",
                    "unknown",
                ]
            ),
            QUERY_VALUES,
            max_size=3,
        )
    )
    schema = request_schema(route)
    shape = draw(st.sampled_from(["valid", "mutated", "mutated", "json", "bytes", "deep"]))
    body: bytes | None = None
    if shape == "bytes":
        body = draw(st.binary(max_size=64))
    elif shape == "deep":
        depth = draw(st.sampled_from([63, 65, 1_000, 50_000]))
        body = b'{"training_job": ' + b"[" * depth + b"]" * depth + b"}"
    elif shape == "json":
        body = msgspec.json.encode(draw(JSON))
    else:
        document = VALID_BODIES.get(schema or "", {})
        if shape == "mutated":
            options = list(paths_in(document)) or [()]
            where = draw(st.sampled_from(options))
            how = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            document = mutate(document, where, how, draw(JSON))
        body = msgspec.json.encode(document) if schema or shape == "mutated" else None
    effective = f"{method} {template}"  # another method on the same path may be a route too
    return {
        "route": effective if effective in Route.ALL else route,
        "method": method,
        "path": path,
        "query": query,
        "body": body,
    }


class ServerThread:
    """A fake with a project, a job and a session, served from its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._start())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self) -> None:
        self.api = FakeTrainingAPI(clock=FakeClock(start=1_700_000_000.0), seed=3)
        await self.api.start()
        self.http = aiohttp.ClientSession(
            self.api.url, headers={"Authorization": f"Api-Key {self.api.api_key}"}
        )
        self.ids: dict[str, str] = {"team_id": next(iter(self.api.teams))}
        self.reseed()

    def reseed(self) -> None:
        api = self.api
        project = api.projects.get(self.ids.get("training_project_id", ""))
        if project is None:
            project = api.add_project("fuzz-home")
        job = api.jobs.get(self.ids.get("training_job_id", ""))
        if job is None or job.project_id != project.id:
            job = api.add_job(project.id, JOB)
            api.set_checkpoint_files(job.id, 3)
        self.ids.update(
            training_project_id=project.id,
            training_job_id=job.id,
            session_id=next(iter(job.sessions)),
        )

    async def send(self, case: dict[str, Any]) -> tuple[int, str, bytes]:
        self.reseed()  # a case may have deleted the project or the job
        path, body = case["path"], case["body"]
        for name, value in self.ids.items():
            path = path.replace(f"<{name}>", value)
            if body is not None:
                body = body.replace(f"<{name}>".encode(), value.encode())
        headers = {"Content-Type": "application/json"} if case["body"] is not None else {}
        async with self.http.request(
            case["method"], path, params=case["query"], data=body, headers=headers
        ) as response:
            return response.status, response.content_type, await response.read()

    async def _stop(self) -> None:
        await self.http.close()
        await self.api.stop()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    thread = ServerThread()
    yield thread
    thread.close()


def test_fuzz_every_route(server: ServerThread) -> None:
    statuses: collections.Counter[int] = collections.Counter()
    shapes: collections.Counter[str] = collections.Counter()
    outside: list[str] = []
    server_errors: list[str] = []
    started = time.perf_counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def run(case: dict[str, Any]) -> None:
        status, content_type, raw = server.run(server.send(case))
        statuses[status] += 1
        shapes["spec route" if case["method"] == case["route"].split(" ")[0] else "no route"] += 1
        where = f"{case['method']} {case['path']} {case['query']} {case['body']!r:.120}"
        if status >= 500:
            server_errors.append(f"{status} {where}: {raw[:200]!r}")
            return
        if content_type != "application/json":
            outside.append(f"{status} not JSON ({content_type}) {where}")
            return
        body = msgspec.json.decode(raw)
        if status == 200:
            errors = list(RESPONSE_VALIDATORS[case["route"]].iter_errors(body))
            if errors:
                outside.append(f"200 {where}: {errors[0].message:.200}")
        elif not (isinstance(body, dict) and isinstance(body.get("message"), str)):
            outside.append(f"{status} error body without a message {where}: {body!r:.200}")

    run()
    total = sum(statuses.values())
    elapsed = time.perf_counter() - started
    print(
        f"\nfuzz: {total} cases in {elapsed:.1f}s; statuses {dict(sorted(statuses.items()))}; "
        f"{len(outside)} outside the spec; {len(server_errors)} un-injected 5xx; "
        f"{dict(shapes)}"
    )
    assert total >= EXAMPLES
    assert not server_errors, server_errors[:5]
    assert not outside, outside[:5]
    assert statuses[200] > 0
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 0
