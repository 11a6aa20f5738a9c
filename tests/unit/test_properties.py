"""Property-based tests: wire round-trips, and hostile bodies raise only SDK errors."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseten_training_async import (
    Accelerator,
    AsyncTrainingClient,
    BasetenError,
    BasetenNamedCheckpoint,
    CacheConfig,
    CheckpointingConfig,
    Compute,
    Image,
    LoadCheckpointConfig,
    LoopsCheckpoint,
    Runtime,
    SecretReference,
    TrainingJobSpec,
    WeightSource,
)
from baseten_training_async.resources.jobs import check_spec
from baseten_training_async.testing import MockTransport, json_response
from tests.conftest import job_json, project_json, sent_create_body

text = st.text(min_size=1, max_size=12)
names = st.none() | text

specs = st.builds(
    TrainingJobSpec,
    image=st.builds(Image, base_image=text),
    compute=st.none()
    | st.builds(
        Compute,
        node_count=st.integers(1, 64),
        cpu_count=st.integers(1, 256),
        memory=text,
        accelerator=st.none() | st.builds(Accelerator, accelerator=text, count=st.integers(1, 8)),
        availability_model=st.sampled_from(["dedicated", "spot"]),
    ),
    runtime=st.none()
    | st.builds(
        Runtime,
        start_commands=st.none() | st.lists(st.text(max_size=20), max_size=3),
        environment_variables=st.none()
        | st.dictionaries(
            text, st.text(max_size=8) | st.builds(SecretReference, name=text), max_size=3
        ),
        enable_cache=st.none() | st.booleans(),
        cache_config=st.none() | st.builds(CacheConfig, enabled=st.booleans()),
        checkpointing_config=st.none()
        | st.builds(
            CheckpointingConfig,
            enabled=st.booleans(),
            volume_size_gib=st.none() | st.integers(1, 1000),
        ),
        load_checkpoint_config=st.none()
        | st.builds(
            LoadCheckpointConfig,
            enabled=st.booleans(),
            checkpoints=st.lists(
                st.builds(BasetenNamedCheckpoint, checkpoint_name=text)
                | st.builds(
                    LoopsCheckpoint,
                    run_id=text,
                    checkpoint_name=text,
                    target=st.sampled_from(["trainer", "sampler"]),
                ),
                max_size=3,
            ),
        ),
    ),
    name=names,
    weights=st.none()
    | st.lists(st.builds(WeightSource, source=text, mount_location=text), max_size=2),
    enable_baseten_workdir=st.booleans(),
    priority=st.none() | st.integers(-100, 100),
)


@given(specs)
def test_request_models_round_trip_through_the_wire(spec: TrainingJobSpec) -> None:
    assert check_spec(spec) == spec
    body = sent_create_body(spec)
    wire = msgspec.json.decode(body)["training_job"]
    assert msgspec.convert(wire, TrainingJobSpec) == spec
    assert not _has_null(wire)  # unset fields are omitted, never sent as null
    # A dict copied from the wire converts to the same model and is sent the same.
    assert check_spec(wire) == spec
    assert sent_create_body(wire) == body


def _has_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _outcome(status: int, body: bytes) -> str:
    """What a client makes of one canned response: "ok" or the error's class name."""
    transport = MockTransport(lambda request: json_response(status, body))

    async def call() -> str:
        async with AsyncTrainingClient(
            "k", base_url="https://api.test", max_retries=0, transport=transport
        ) as client:
            try:
                await client.jobs.retrieve("p", "j")
                await client.projects.list()
            except BasetenError as exc:
                return type(exc).__name__
        return "ok"

    return asyncio.run(call())


VALID = msgspec.json.encode({"training_job": job_json(), "training_projects": [project_json()]})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([200, 201, 400, 404, 429, 500, 503]))
def test_arbitrary_bodies_raise_only_sdk_errors(body: bytes, status: int) -> None:
    expected = {
        200: {"ok", "APIResponseValidationError"},
        201: {"ok", "APIResponseValidationError"},
        400: {"BadRequestError"},
        404: {"NotFoundError"},
        429: {"RateLimitError"},
        500: {"InternalServerError"},
        503: {"InternalServerError"},
    }
    assert _outcome(status, body) in expected[status]


def _mutations(value: Any) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: _mutations(v) | leaves for k, v in value.items()})
    if isinstance(value, list):
        return st.lists(_mutations(value[0]) if value else leaves, max_size=2)
    return st.just(value) | leaves


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations(msgspec.json.decode(VALID)))
def test_mutated_bodies_raise_only_sdk_errors(mutated: Any) -> None:
    outcome = _outcome(200, msgspec.json.encode(mutated))
    assert outcome in {"ok", "APIResponseValidationError"}
