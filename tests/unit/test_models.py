from __future__ import annotations

import copy
import typing
from typing import Any

import msgspec
import pytest

from baseten_training_async import (
    AsyncTrainingClient,
    AvailabilityModel,
    AwsAssumeRoleDockerAuth,
    AWSCredentials,
    BasetenLatestCheckpoint,
    BasetenNamedCheckpoint,
    BlobCredentials,
    CacheConfig,
    CheckpointTarget,
    Compute,
    DockerAuth,
    DockerAuthMethod,
    Image,
    InteractiveSessionConfig,
    InvalidInputError,
    JobStatus,
    LoadCheckpointConfig,
    LoopsCheckpoint,
    Runtime,
    SecretReference,
    SessionAuthProvider,
    SessionProvider,
    SessionTrigger,
    SSHCertificate,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
    TrainingProject,
    WeightAuth,
    WeightAuthMethod,
    models,
)
from baseten_training_async.resources.jobs import SpecInput, check_spec
from baseten_training_async.testing import MockTransport, json_response
from tests.conftest import job_json, project_json, sent_create_body


def encode_spec(spec: SpecInput) -> tuple[TrainingJobSpec, bytes]:
    """A spec checked as `jobs.create` checks it, and the create body it sends."""
    return check_spec(spec), sent_create_body(spec)


# The create-job example body from the API docs, as users copy it.
DOCS_EXAMPLE = {
    "image": {"base_image": "hello-world", "docker_auth": None},
    "compute": {
        "node_count": 1,
        "cpu_count": 1,
        "memory": "2Gi",
        "accelerator": {"accelerator": "H100", "count": 2},
    },
    "runtime": {
        "start_commands": ["python main.py"],
        "environment_variables": {"API_KEY": "your_api_key_here", "PATH": "/usr/bin"},
        "artifacts": None,
        "enable_cache": None,
        "cache_config": {
            "enable_legacy_hf_mount": True,
            "enabled": True,
            "mount_base_path": "/root/.cache",
            "require_cache_affinity": True,
        },
        "checkpointing_config": {
            "checkpoint_path": "/mnt/ckpts",
            "enabled": True,
            "volume_size_gib": None,
        },
        "load_checkpoint_config": None,
    },
    "weights": [
        {
            "allow_patterns": None,
            "auth": None,
            "auth_secret_name": None,
            "ignore_patterns": None,
            "mount_location": "/app/models/base",
            "source": "hf://meta-llama/Llama-3-8B@main",
        }
    ],
}

# Server defaults of CreateTrainingJobV1 fields, used to compare meanings.
_DEFAULTS = {
    "compute": {
        "node_count": 1,
        "cpu_count": 1,
        "memory": "2Gi",
        "availability_model": "dedicated",
    },
    "cache_config": {
        "enable_legacy_hf_mount": False,
        "enabled": False,
        "require_cache_affinity": True,
        "mount_base_path": "/root/.cache",
    },
}


def _meaning(value: object) -> object:
    """Drop nulls so that 'null' and 'absent' compare equal, as the server treats them."""
    if isinstance(value, dict):
        return {k: _meaning(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_meaning(v) for v in value]
    return value


def test_docs_example_converts_and_reencodes_to_the_same_meaning() -> None:
    spec = msgspec.convert(DOCS_EXAMPLE, TrainingJobSpec)
    assert spec.compute is not None
    assert spec.compute.accelerator is not None
    assert spec.compute.accelerator.count == 2
    assert spec.weights is not None
    assert spec.weights[0].source == "hf://meta-llama/Llama-3-8B@main"

    wire = msgspec.json.decode(sent_create_body(DOCS_EXAMPLE))
    assert list(wire) == ["training_job"]
    sent = wire["training_job"]
    # "artifacts": null is not sent: the spec types it as a non-null array.
    assert "artifacts" not in sent["runtime"]
    # Fields equal to the server's defaults are omitted: with the defaults
    # filled in on both sides, the wire says what the docs' example says.
    assert _meaning(_with_defaults(sent)) == _meaning(_with_defaults(DOCS_EXAMPLE))


def _with_defaults(job: dict[str, Any]) -> dict[str, Any]:
    job = copy.deepcopy(job)
    job["compute"] = {**_DEFAULTS["compute"], **job["compute"]}
    runtime = job["runtime"]
    runtime["cache_config"] = {**_DEFAULTS["cache_config"], **runtime["cache_config"]}
    return job


def test_unset_fields_are_omitted_on_the_wire() -> None:
    body = sent_create_body(TrainingJobSpec(image=Image(base_image="hello-world")))
    assert body == b'{"training_job":{"image":{"base_image":"hello-world"}}}'


def test_environment_variables_take_strings_or_secret_references() -> None:
    spec = TrainingJobSpec(
        image=Image(base_image="x"),
        runtime=Runtime(environment_variables={"A": "1", "HF": SecretReference(name="hf")}),
    )
    checked = check_spec(spec)
    body = sent_create_body(spec)
    assert b'"environment_variables":{"A":"1","HF":{"name":"hf"}}' in body
    assert checked.runtime is not None
    assert checked.runtime.environment_variables is not None
    assert checked.runtime.environment_variables["HF"] == SecretReference(name="hf")


def test_checkpoint_kinds_are_tagged_by_typ() -> None:
    config = LoadCheckpointConfig(
        enabled=True,
        checkpoints=[
            BasetenLatestCheckpoint(project_name="p"),
            BasetenNamedCheckpoint(checkpoint_name="c1"),
            LoopsCheckpoint(run_id="r", checkpoint_name="c2"),
        ],
    )
    wire = msgspec.to_builtins(config)
    assert [c["typ"] for c in wire["checkpoints"]] == [
        "baseten_latest_checkpoint",
        "baseten_named_checkpoint",
        "loops_checkpoint",
    ]
    assert msgspec.convert(wire, LoadCheckpointConfig) == config


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"image": {"base_image": ""}}, "spec.image.base_image"),
        ({"image": {"base_image": "x"}, "compute": {"node_count": 0}}, "spec.compute.node_count"),
        (
            {
                "image": {"base_image": "x"},
                "compute": {"accelerator": {"accelerator": "H100", "count": -1}},
            },
            "spec.compute.accelerator.count",
        ),
        (
            {"image": {"base_image": "x"}, "interactive_session": {"timeout_minutes": -2}},
            "spec.interactive_session.timeout_minutes",
        ),
        (
            {"image": {"base_image": "x"}, "compute": {"availability_model": 3}},
            "spec.compute.availability_model",
        ),
        ({"image": {"base_image": "x"}, "naem": "typo"}, "spec.naem"),
        ({"compute": {}}, "spec.image"),
        (
            {"image": {"base_image": "x"}, "weights": [{"source": "hf://a"}]},
            "spec.weights[0].mount_location",
        ),
    ],
)
async def test_invalid_specs_are_refused_naming_the_field(
    payload: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_spec(payload)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    # The client refuses it the same way, before anything is sent.
    transport = MockTransport(lambda request: json_response(200, {"training_job": job_json()}))
    async with AsyncTrainingClient("k", base_url="https://api.test", transport=transport) as client:
        with pytest.raises(InvalidInputError) as sent:
            await client.jobs.create("proj1", payload)
    assert sent.value.field == field
    assert transport.requests == []


def test_a_spec_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must be a TrainingJobSpec or a dict"):
        check_spec(["hello-world"])  # type: ignore[arg-type]


def test_wrong_type_set_after_construction_is_caught() -> None:
    compute = Compute(cpu_count=2)
    spec = TrainingJobSpec(image=Image(base_image="x"), compute=compute)
    compute.cpu_count = "4"  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match=r"compute\.cpu_count"):
        check_spec(spec)


def test_responses_ignore_unknown_fields_and_keep_unknown_statuses() -> None:
    payload = job_json(status="TRAINING_JOB_HIBERNATING", brand_new_field={"x": 1})
    job = msgspec.convert(payload, TrainingJob)
    assert job.current_status == "TRAINING_JOB_HIBERNATING"
    assert job.error_message is None
    assert job.is_terminal  # unknown statuses count as terminal
    project = msgspec.convert(project_json(team_name="ml", latest_job=payload), TrainingProject)
    assert project.team_name == "ml"
    assert project.latest_job is not None
    assert project.latest_job.id == "job1"


def test_required_response_fields_are_enforced() -> None:
    payload = job_json()
    del payload["instance_type"]
    with pytest.raises(msgspec.ValidationError, match="instance_type"):
        msgspec.convert(payload, TrainingJob)


def test_job_status_sets() -> None:
    assert JobStatus.RUNNING in JobStatus.ACTIVE
    assert JobStatus.COMPLETED in JobStatus.TERMINAL
    assert not JobStatus.ACTIVE & JobStatus.TERMINAL
    assert not JobStatus.is_terminal(JobStatus.PENDING)
    assert JobStatus.is_terminal(JobStatus.PREEMPTED)


@pytest.mark.parametrize("stamp", ["abc", "", "-1", "1.5"])
def test_log_timestamps_must_be_integer_nanoseconds(stamp: str) -> None:
    from baseten_training_async import LogLine

    with pytest.raises(msgspec.ValidationError, match="timestamp"):
        msgspec.convert({"timestamp": stamp, "message": "m", "replica": None}, LogLine)


def test_an_explicit_server_default_is_sent() -> None:
    spec = TrainingJobSpec(
        image=Image(base_image="x"),
        compute=Compute(node_count=1, cpu_count=1, memory="2Gi", availability_model="dedicated"),
        runtime=Runtime(cache_config=CacheConfig(enabled=False, require_cache_affinity=True)),
        interactive_session=InteractiveSessionConfig(timeout_minutes=480, trigger="on_demand"),
        enable_baseten_workdir=False,
    )
    _, body = encode_spec(spec)
    sent = msgspec.json.decode(body)["training_job"]
    assert sent["compute"] == {
        "node_count": 1,
        "cpu_count": 1,
        "memory": "2Gi",
        "availability_model": "dedicated",
    }
    assert sent["runtime"]["cache_config"] == {"enabled": False, "require_cache_affinity": True}
    assert sent["interactive_session"] == {"trigger": "on_demand", "timeout_minutes": 480}
    assert sent["enable_baseten_workdir"] is False


def test_fields_with_server_defaults_start_unset() -> None:
    compute = Compute()
    assert compute.node_count is msgspec.UNSET
    assert compute.availability_model is msgspec.UNSET
    assert msgspec.json.encode(compute) == b"{}"
    assert msgspec.json.encode(CacheConfig()) == b"{}"
    assert msgspec.json.encode(InteractiveSessionConfig()) == b"{}"
    assert msgspec.json.encode(LoadCheckpointConfig()) == b"{}"
    # A dict that sets a field to the server's default keeps it, too.
    checked, body = encode_spec({"image": {"base_image": "x"}, "compute": {"cpu_count": 1}})
    assert checked.compute is not None
    assert checked.compute.cpu_count == 1
    assert checked.compute.node_count is msgspec.UNSET
    assert msgspec.json.decode(body)["training_job"]["compute"] == {"cpu_count": 1}


@pytest.mark.parametrize(
    "payload",
    [
        # Nulls that the API docs and the official clients send for fields the
        # spec types as non-null: accepted, and never put on the wire.
        {"image": {"base_image": "x"}, "compute": None},
        {"image": {"base_image": "x"}, "runtime": None},
        {"image": {"base_image": "x"}, "weights": None},
        {"image": {"base_image": "x"}, "runtime": {"start_commands": None}},
        {"image": {"base_image": "x"}, "runtime": {"environment_variables": None}},
        {"image": {"base_image": "x"}, "runtime": {"artifacts": None}},
        {"image": {"base_image": "x"}, "runtime": {"checkpointing_config": None}},
        {
            "image": {"base_image": "x"},
            "runtime": {"load_checkpoint_config": {"enabled": True, "checkpoints": None}},
        },
    ],
)
def test_nulls_from_the_docs_are_accepted_and_not_sent(payload: dict[str, Any]) -> None:
    _, body = encode_spec(payload)
    assert b"null" not in body
    assert msgspec.json.decode(body)["training_job"]["image"] == {"base_image": "x"}


def test_spec_allowed_values_are_accepted() -> None:
    spec = {
        "image": {"base_image": "x"},
        "compute": {"accelerator": {"accelerator": "H100", "count": 0}},
        "interactive_session": {"timeout_minutes": -1},
    }
    _, body = encode_spec(spec)
    sent = msgspec.json.decode(body)["training_job"]
    assert sent["compute"]["accelerator"]["count"] == 0
    assert sent["interactive_session"]["timeout_minutes"] == -1
    _, body = encode_spec({**spec, "interactive_session": {"timeout_minutes": 0}})
    assert msgspec.json.decode(body)["training_job"]["interactive_session"] == {
        "timeout_minutes": 0
    }


def test_newer_auth_fields_convert_from_the_official_examples() -> None:
    spec = msgspec.convert(
        {
            "image": {
                "base_image": "123.dkr.ecr.us-east-1.amazonaws.com/train:1",
                "docker_auth": {
                    "registry": "123.dkr.ecr.us-east-1.amazonaws.com",
                    "auth_method": DockerAuthMethod.AWS_ASSUME_ROLE,
                    "aws_assume_role_docker_auth": {
                        "role_arn": "arn:aws:iam::123:role/pull",
                        "region": "us-east-1",
                    },
                },
            },
            "weights": [
                {
                    "source": "cw://my-bucket/models/llama",
                    "mount_location": "/models/llama",
                    "auth": {
                        "auth_method": "AWS_ASSUME_ROLE",
                        "aws_assume_role_arn": "arn:aws:iam::123:role/weights",
                        "aws_assume_role_region": "us-east-1",
                    },
                }
            ],
        },
        TrainingJobSpec,
    )
    assert spec.image.docker_auth is not None
    assert spec.image.docker_auth.aws_assume_role_docker_auth == AwsAssumeRoleDockerAuth(
        role_arn="arn:aws:iam::123:role/pull", region="us-east-1"
    )
    assert spec.weights is not None
    auth = spec.weights[0].auth
    assert isinstance(auth, WeightAuth)
    assert auth.auth_method == WeightAuthMethod.AWS_ASSUME_ROLE
    _, body = encode_spec(spec)
    sent = msgspec.json.decode(body)["training_job"]
    assert sent["weights"][0]["auth"] == {
        "auth_method": "AWS_ASSUME_ROLE",
        "aws_assume_role_arn": "arn:aws:iam::123:role/weights",
        "aws_assume_role_region": "us-east-1",
    }
    with pytest.raises(InvalidInputError) as info:
        encode_spec({**sent, "weights": [{**sent["weights"][0], "auth": {"method": "x"}}]})
    assert info.value.field.startswith("spec.weights[0].auth")


def test_enum_like_request_values_accept_any_string_and_send_it() -> None:
    spec = TrainingJobSpec(
        image=Image(base_image="x", docker_auth=DockerAuth(registry="r", auth_method="NEW_AUTH")),
        compute=Compute(availability_model="reserved"),
        interactive_session=InteractiveSessionConfig(
            trigger="on_schedule", session_provider="zed", auth_provider="okta"
        ),
    )
    _, body = encode_spec(spec)
    sent = msgspec.json.decode(body)["training_job"]
    assert sent["image"]["docker_auth"]["auth_method"] == "NEW_AUTH"
    assert sent["compute"]["availability_model"] == "reserved"
    assert sent["interactive_session"] == {
        "trigger": "on_schedule",
        "session_provider": "zed",
        "auth_provider": "okta",
    }
    with pytest.raises(InvalidInputError) as info:
        encode_spec({"image": {"base_image": "x"}, "compute": {"availability_model": ""}})
    assert info.value.field == "spec.compute.availability_model"


@pytest.mark.parametrize(
    ("constants", "alias"),
    [
        (AvailabilityModel, "AvailabilityModelValue"),
        (DockerAuthMethod, "DockerAuthMethodValue"),
        (WeightAuthMethod, "WeightAuthMethodValue"),
        (SessionTrigger, "SessionTriggerValue"),
        (SessionProvider, "SessionProviderValue"),
        (SessionAuthProvider, "SessionAuthProviderValue"),
        (CheckpointTarget, "CheckpointTargetValue"),
    ],
)
def test_constants_match_the_completed_literals(constants: type, alias: str) -> None:
    known, _free_form = typing.get_args(getattr(models, alias))
    values = {v for k, v in vars(constants).items() if k.isupper()}
    assert values == set(typing.get_args(known))


def test_newer_response_fields_decode() -> None:
    job = msgspec.convert(job_json(node_count=4), TrainingJob)
    assert job.node_count == 4
    assert msgspec.convert(job_json(), TrainingJob).node_count == 1
    capacity = msgspec.convert(
        {
            "gpu_capacities": [
                {
                    "gpu_type": "H100",
                    "baseline": 8,
                    "limit": 16,
                    "usage_count": 10,
                    "dedicated_usage_count": 8,
                    "spot_usage_count": 2,
                }
            ],
            "team_gpu_capacities": None,
        },
        TrainingCapacity,
    )
    assert capacity.gpu_capacities[0].spot_usage_count == 2
    assert capacity.team_gpu_capacities is None


def test_credentials_stay_out_of_reprs() -> None:
    creds = BlobCredentials(
        creds=AWSCredentials(
            aws_access_key_id="AKIA1", aws_secret_access_key="s3cr3t", aws_session_token="t0k3n"
        ),
        s3_key="k",
        s3_bucket="b",
    )
    cert = SSHCertificate(
        ssh_certificate="cert", jwt="j.w.t", proxy_address="p:22", ssh_cert_expires_at="2026"
    )
    shown = repr(creds) + repr(cert)
    assert "AKIA1" in shown
    for secret in ("s3cr3t", "t0k3n", "j.w.t"):
        assert secret not in shown
