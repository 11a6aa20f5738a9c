"""The SDK's models agree with the bundled spec, field by field: names, required, nullable.

The table below maps every schema of the spec to the SDK struct that sends or
reads it. A schema added to the spec fails `test_every_schema_is_mapped` until
it has a row; a field added, dropped, made required or nullable on either side
fails `test_fields_agree_with_the_spec`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import msgspec.inspect as mi
import pytest

from baseten_training_async import (
    Accelerator,
    ActiveJobAtSubmit,
    AuthCode,
    AvailabilityModel,
    AwsAssumeRoleDockerAuth,
    AWSCredentials,
    AwsIamDockerAuth,
    AwsOidcDockerAuth,
    BasetenLatestCheckpoint,
    BasetenNamedCheckpoint,
    BlobCredentials,
    CacheConfig,
    CacheSummary,
    CapacityAtSubmit,
    Checkpoint,
    CheckpointFile,
    CheckpointingConfig,
    CheckpointSyncStatus,
    Compute,
    DockerAuth,
    DockerAuthMethod,
    FileSummary,
    GcpOidcDockerAuth,
    GcpServiceAccountJsonDockerAuth,
    GitInfo,
    GpuCapacity,
    Image,
    InstanceType,
    InteractiveSession,
    InteractiveSessionConfig,
    InteractiveSessionUpdate,
    JobMetrics,
    JobNodeMetrics,
    JobTombstone,
    LoadCheckpointConfig,
    LogLevel,
    LogLine,
    LoopsCheckpoint,
    MetricPoint,
    PendingJobAheadAtSubmit,
    ProjectTombstone,
    QueueContext,
    QueueEvent,
    RegistrySecretDockerAuth,
    ResourceMetrics,
    Runtime,
    S3Artifact,
    SecretReference,
    SessionAuthProvider,
    SessionProvider,
    SessionTrigger,
    SSHCertificate,
    StorageMetrics,
    Team,
    TeamGpuCapacity,
    TrainingCapacity,
    TrainingJob,
    TrainingJobSpec,
    TrainingProject,
    TrainingProjectSummary,
    TrussUserEnv,
    User,
    WeightAuth,
    WeightAuthMethod,
    WeightSource,
)
from baseten_training_async import _wire as wire
from baseten_training_async.testing import openapi_spec

SCHEMAS: dict[str, Any] = openapi_spec()["components"]["schemas"]  # type: ignore[index]

EXACT: Final = "exact"  # the struct has every field of the schema, and no other
SUBSET: Final = "subset"  # an envelope the SDK reads only some keys of

MODELS: dict[str, tuple[type[msgspec.Struct], str]] = {
    # Request models.
    "CreateTrainingJobRequestV1": (wire.CreateJobRequest, EXACT),
    "CreateTrainingJobV1": (TrainingJobSpec, EXACT),
    "CreateTrainingJobImageV1": (Image, EXACT),
    "DockerAuthV1": (DockerAuth, EXACT),
    "GcpServiceAccountJsonDockerAuthV1": (GcpServiceAccountJsonDockerAuth, EXACT),
    "AwsIamDockerAuthV1": (AwsIamDockerAuth, EXACT),
    "AwsOidcDockerAuthV1": (AwsOidcDockerAuth, EXACT),
    "GcpOidcDockerAuthV1": (GcpOidcDockerAuth, EXACT),
    "RegistrySecretDockerAuthV1": (RegistrySecretDockerAuth, EXACT),
    "SecretReferenceV1": (SecretReference, EXACT),
    "CreateTrainingJobComputeV1": (Compute, EXACT),
    "CreateTrainingJobAcceleratorV1": (Accelerator, EXACT),
    "CreateTrainingJobRuntimeV1": (Runtime, EXACT),
    "CreateTrainingJobS3Artifact": (S3Artifact, EXACT),
    "CreateTrainingJobCacheConfig": (CacheConfig, EXACT),
    "CreateTrainingJobCheckpointingConfig": (CheckpointingConfig, EXACT),
    "LoadCheckpointConfig": (LoadCheckpointConfig, EXACT),
    "BasetenLatestCheckpointConfig": (BasetenLatestCheckpoint, EXACT),
    "BasetenNamedCheckpointConfig": (BasetenNamedCheckpoint, EXACT),
    "LoopsCheckpointConfig": (LoopsCheckpoint, EXACT),
    "TrussUserEnv": (TrussUserEnv, EXACT),
    "GitInfo": (GitInfo, EXACT),
    "InteractiveSessionConfigV1": (InteractiveSessionConfig, EXACT),
    "CreateJobWeightConfigV1": (WeightSource, EXACT),
    "UpsertTrainingProjectRequestV1": (wire.UpsertProjectRequest, EXACT),
    "UpsertTrainingProjectV1": (wire.ProjectName, EXACT),
    "StopTrainingJobRequestV1": (wire.EmptyRequest, EXACT),
    "SearchTrainingJobsRequestV1": (wire.SearchRequest, EXACT),
    "OrderByV1": (wire.OrderBy, EXACT),
    "UpdateTrainingJobRequestV1": (wire.UpdateJobRequest, EXACT),
    "PatchInteractiveSessionRequestV1": (wire.PatchSessionRequest, EXACT),
    "SignSSHCertificateRequestV1": (wire.SignSSHRequest, EXACT),
    # Schemas from baseten 0.13.1 that the published spec lacks (the bundled one has them).
    "AwsAssumeRoleDockerAuthV1": (AwsAssumeRoleDockerAuth, EXACT),
    "TrainingWeightAuthV1": (WeightAuth, EXACT),
    "PatchTeamTrainingGpuCapacityRequestV1": (wire.PatchCapacityRequest, EXACT),
    # Response models.
    "TrainingJobV1": (TrainingJob, EXACT),
    "InstanceTypeV1": (InstanceType, EXACT),
    "TrainingProjectSummaryV1": (TrainingProjectSummary, EXACT),
    "UserV1": (User, EXACT),
    "TrainingProjectV1": (TrainingProject, EXACT),
    "TrainingProjectTombstoneV1": (ProjectTombstone, EXACT),
    "TrainingJobTombstoneV1": (JobTombstone, EXACT),
    "LogV1": (LogLine, EXACT),
    "TrainingJobMetricV1": (MetricPoint, EXACT),
    "StorageMetricsV1": (StorageMetrics, EXACT),
    "TrainingJobMetricsV1": (ResourceMetrics, EXACT),
    "TrainingJobNodeMetricsV1": (JobNodeMetrics, EXACT),
    "GetTrainingJobMetricsResponseV1": (JobMetrics, EXACT),
    "TrainingJobCheckpointV1": (Checkpoint, EXACT),
    "CheckpointFile": (CheckpointFile, EXACT),
    "FileSummary": (FileSummary, EXACT),
    "GetCacheSummaryResponseV1": (CacheSummary, EXACT),
    "TrainingGpuCapacityItemV1": (GpuCapacity, EXACT),
    "TeamTrainingGpuCapacityItemV1": (TeamGpuCapacity, EXACT),
    "GetTrainingGpuCapacityResponseV1": (TrainingCapacity, EXACT),
    "TeamV1": (Team, EXACT),
    "AuthCodeV1": (AuthCode, EXACT),
    "InteractiveSessionV1": (InteractiveSession, EXACT),
    "PatchInteractiveSessionResponseV1": (InteractiveSessionUpdate, EXACT),
    "SignSSHCertificateResponseV1": (SSHCertificate, EXACT),
    "AWSCredentialsV1": (AWSCredentials, EXACT),
    "GetBlobCredentialsResponseV1": (BlobCredentials, EXACT),
    "GetTrainingJobQueueContextResponseV1": (QueueContext, EXACT),
    "CapacityAtSubmitV1": (CapacityAtSubmit, EXACT),
    "ActiveJobAtSubmitV1": (ActiveJobAtSubmit, EXACT),
    "PendingJobAheadAtSubmitV1": (PendingJobAheadAtSubmit, EXACT),
    "QueueEventV1": (QueueEvent, EXACT),
    # Response envelopes.
    "TeamsV1": (wire.TeamsEnvelope, EXACT),
    "GetAuthCodesResponseV1": (wire.AuthCodesEnvelope, EXACT),
    "ListTrainingProjectsResponseV1": (wire.ProjectsEnvelope, EXACT),
    "GetTrainingProjectResponseV1": (wire.ProjectEnvelope, EXACT),
    "UpsertTrainingProjectResponseV1": (wire.ProjectEnvelope, EXACT),
    "ListTrainingJobsResponseV1": (wire.JobsEnvelope, SUBSET),
    "SearchTrainingJobsResponseV1": (wire.JobsEnvelope, EXACT),
    "GetTrainingJobResponseV1": (wire.JobEnvelope, SUBSET),
    "CreateTrainingJobResponseV1": (wire.JobEnvelope, EXACT),
    "RecreateTrainingJobResponseV1": (wire.JobEnvelope, EXACT),
    "UpdateTrainingJobResponseV1": (wire.JobEnvelope, EXACT),
    "StopTrainingJobResponseV1": (wire.JobEnvelope, EXACT),
    "GetTrainingJobCheckpointsResponseV1": (wire.CheckpointsEnvelope, EXACT),
    "GetTrainingJobCheckpointFilesResponseV1": (wire.CheckpointFilesPage, EXACT),
    "GetLogsResponseV1": (wire.LogsEnvelope, EXACT),
    "DownloadTrainingJobResponseV1": (wire.DownloadEnvelope, EXACT),
    "PatchTeamTrainingGpuCapacityResponseV1": (wire.TeamCapacityEnvelope, EXACT),
}

# Enum schemas: the constants class must know every value.
ENUMS: dict[str, type] = {
    "V1AvailabilityModel": AvailabilityModel,
    "DockerAuthType": DockerAuthMethod,
    "TrainingWeightAuthMethod": WeightAuthMethod,
    "V1InteractiveSessionTrigger": SessionTrigger,
    "V1InteractiveSessionProvider": SessionProvider,
    "V1InteractiveSessionAuthProvider": SessionAuthProvider,
    "LogLevelV1": LogLevel,
    "CheckpointSyncStatus": CheckpointSyncStatus,
}

NOT_MODELLED = {
    "GetTrainingJobLogsRequestV1": "deprecated POST body; the SDK sends these as query parameters",
    "GetTrainingJobMetricsRequestV1": "deprecated POST body; sent as query parameters",
    "SortOrderV1": "'asc'/'desc': a Literal parameter of jobs.search",
}

# Where the SDK follows ``baseten`` 0.13.1's models rather than the bundled spec.
NEWER_SHAPES = {
    ("GetTrainingGpuCapacityResponseV1", "team_gpu_capacities"),  # nullable in 0.13.1
}

# Request fields the spec types as non-null, where the API docs' examples or the
# official models send null: the SDK accepts None and never sends it.
NULL_DROPPED = {
    ("CreateTrainingJobV1", "compute"),
    ("CreateTrainingJobV1", "runtime"),
    ("CreateTrainingJobV1", "weights"),
    ("CreateTrainingJobRuntimeV1", "start_commands"),
    ("CreateTrainingJobRuntimeV1", "environment_variables"),
    ("CreateTrainingJobRuntimeV1", "artifacts"),
    ("CreateTrainingJobRuntimeV1", "checkpointing_config"),
    ("LoadCheckpointConfig", "checkpoints"),
}


def _sdk_fields(struct: type[msgspec.Struct]) -> dict[str, tuple[bool, bool]]:
    """Wire name -> (required, nullable) of a struct's fields, its tag field included."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    fields = {f.encode_name: (f.required, _nullable(f.type)) for f in info.fields}
    if info.tag_field is not None:
        fields[info.tag_field] = (False, False)
    return fields


def _nullable(kind: mi.Type) -> bool:
    if isinstance(kind, mi.NoneType):
        return True
    return isinstance(kind, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in kind.types)


def _spec_fields(schema: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    required = set(schema.get("required", []))
    return {
        name: (name in required, {"type": "null"} in prop.get("anyOf", []))
        for name, prop in schema.get("properties", {}).items()
    }


def _rows() -> list[Any]:
    return [pytest.param(name, *row, id=name) for name, row in sorted(MODELS.items())]


def test_every_schema_is_mapped() -> None:
    known = set(MODELS) | set(ENUMS) | set(NOT_MODELLED)
    assert set(SCHEMAS) - known == set(), "schemas the SDK has no row for"
    assert known - set(SCHEMAS) == set(), "rows for schemas the spec does not have"


@pytest.mark.parametrize(("schema_name", "struct", "mode"), _rows())
def test_fields_agree_with_the_spec(
    schema_name: str, struct: type[msgspec.Struct], mode: str
) -> None:
    sdk = _sdk_fields(struct)
    spec = _spec_fields(SCHEMAS[schema_name])
    if mode == EXACT:
        assert set(spec) - set(sdk) == set(), f"{schema_name}: fields the SDK lacks"
    assert set(sdk) - set(spec) == set(), f"{schema_name}: fields the spec does not have"
    for name in set(sdk) & set(spec):
        if (schema_name, name) in NEWER_SHAPES:
            continue
        sdk_required, sdk_nullable = sdk[name]
        spec_required, spec_nullable = spec[name]
        assert sdk_required == spec_required, f"{schema_name}.{name}: required"
        if (schema_name, name) in NULL_DROPPED:
            assert sdk_nullable, f"{schema_name}.{name}: must accept the docs' null"
        else:
            assert sdk_nullable == spec_nullable, f"{schema_name}.{name}: nullable"


def test_nulls_outside_the_spec_are_never_sent() -> None:
    structs = {name: struct for name, (struct, _) in MODELS.items()}
    for schema_name, name in NULL_DROPPED:
        struct = structs[schema_name]
        assert struct.__struct_config__.omit_defaults, schema_name
        (field,) = (f for f in msgspec.structs.fields(struct) if f.encode_name == name)
        assert field.default is None, f"{schema_name}.{name}"


def test_every_allowance_is_still_needed() -> None:
    for schema_name, name in NEWER_SHAPES | NULL_DROPPED:
        sdk = _sdk_fields(MODELS[schema_name][0])[name]
        spec = _spec_fields(SCHEMAS[schema_name])[name]
        assert sdk != spec, f"{schema_name}.{name} agrees with the spec now: drop its allowance"


@pytest.mark.parametrize(("schema_name", "constants"), sorted(ENUMS.items()))
def test_constants_know_every_spec_value(schema_name: str, constants: type) -> None:
    values = {v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str)}
    assert set(SCHEMAS[schema_name]["enum"]) <= values
