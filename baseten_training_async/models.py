"""Typed models for the Baseten Training API.

Every model is a `msgspec.Struct` whose field names are the wire names,
so a payload copied from the API docs converts directly::

    spec = msgspec.convert(payload["training_job"], TrainingJobSpec)

Request models (the ones you build) refuse unknown fields, so a typo is an
error rather than a silently ignored setting, and send only the fields you set.
A field the server fills in with a default of its own starts as `msgspec.UNSET`
and stays off the wire until you give it a value; once given, it is sent, even
when it equals the server's default (``Compute(cpu_count=1)`` sends
``cpu_count``). A field whose server default is ``null`` starts as ``None``,
and ``None`` is never sent: a ``null`` copied from the API docs (such as
``"artifacts": null``) means "not set". Response models (the ones the API returns)
ignore fields they do not know, and every enum-like server value is a plain
``str`` so a value added by the server later still decodes; the known values
are listed as constants on classes such as `JobStatus`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "AWSCredentials",
    "Accelerator",
    "ActiveJobAtSubmit",
    "AuthCode",
    "AvailabilityModel",
    "AwsAssumeRoleDockerAuth",
    "AwsIamDockerAuth",
    "AwsOidcDockerAuth",
    "BasetenLatestCheckpoint",
    "BasetenNamedCheckpoint",
    "BlobCredentials",
    "CacheConfig",
    "CacheSummary",
    "CapacityAtSubmit",
    "Checkpoint",
    "CheckpointFile",
    "CheckpointSyncStatus",
    "CheckpointTarget",
    "CheckpointingConfig",
    "Compute",
    "DockerAuth",
    "DockerAuthMethod",
    "FileSummary",
    "GcpOidcDockerAuth",
    "GcpServiceAccountJsonDockerAuth",
    "GitInfo",
    "GpuCapacity",
    "Image",
    "InstanceType",
    "InteractiveSession",
    "InteractiveSessionConfig",
    "InteractiveSessionUpdate",
    "JobMetrics",
    "JobNodeMetrics",
    "JobStatus",
    "JobTombstone",
    "LoadCheckpointConfig",
    "LogLevel",
    "LogLine",
    "LoopsCheckpoint",
    "MetricPoint",
    "PendingJobAheadAtSubmit",
    "ProjectTombstone",
    "QueueContext",
    "QueueEvent",
    "RegistrySecretDockerAuth",
    "ResourceMetrics",
    "Runtime",
    "S3Artifact",
    "SSHCertificate",
    "SecretReference",
    "SessionAuthProvider",
    "SessionProvider",
    "SessionTrigger",
    "StorageMetrics",
    "Team",
    "TeamGpuCapacity",
    "TrainingCapacity",
    "FinishedJob",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingProject",
    "TrainingProjectSummary",
    "TrussUserEnv",
    "User",
    "WeightAuth",
    "WeightAuthMethod",
    "WeightSource",
]

# --------------------------------------------------------------------------- #
# Enum-like values. The server owns these sets; the SDK keeps them as strings. #
# --------------------------------------------------------------------------- #


class JobStatus:
    """Known values of `TrainingJob.current_status`.

    The server may add statuses; the SDK decodes any string. Use
    `is_terminal` rather than comparing against `ACTIVE`, so an
    unknown status is treated as terminal (it will not be waited on forever).
    """

    PENDING: Final = "TRAINING_JOB_PENDING"
    QUEUED: Final = "TRAINING_JOB_QUEUED"
    CREATED: Final = "TRAINING_JOB_CREATED"
    DEPLOYING: Final = "TRAINING_JOB_DEPLOYING"
    RUNNING: Final = "TRAINING_JOB_RUNNING"
    COMPLETED: Final = "TRAINING_JOB_COMPLETED"
    FAILED: Final = "TRAINING_JOB_FAILED"
    DEPLOY_FAILED: Final = "TRAINING_JOB_DEPLOY_FAILED"
    STOPPED: Final = "TRAINING_JOB_STOPPED"
    PREEMPTED: Final = "TRAINING_JOB_PREEMPTED"

    ACTIVE: ClassVar[frozenset[str]] = frozenset({PENDING, QUEUED, CREATED, DEPLOYING, RUNNING})
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {COMPLETED, FAILED, DEPLOY_FAILED, STOPPED, PREEMPTED}
    )

    @classmethod
    def is_terminal(cls, status: str) -> bool:
        """Return True unless ``status`` is a known active status."""
        return status not in cls.ACTIVE


class AvailabilityModel:
    """Values of `Compute.availability_model`: the capacity a job is scheduled on.

    Any other string is accepted and sent, for values the server adds later.
    """

    DEDICATED: Final = "dedicated"
    SPOT: Final = "spot"


class DockerAuthMethod:
    """Values of `DockerAuth.auth_method`; any other string is accepted and sent."""

    GCP_SERVICE_ACCOUNT_JSON: Final = "GCP_SERVICE_ACCOUNT_JSON"
    AWS_IAM: Final = "AWS_IAM"
    AWS_OIDC: Final = "AWS_OIDC"
    GCP_OIDC: Final = "GCP_OIDC"
    REGISTRY_SECRET: Final = "REGISTRY_SECRET"
    AWS_ASSUME_ROLE: Final = "AWS_ASSUME_ROLE"  # baseten 0.13.1: DockerAuth


class WeightAuthMethod:
    """Values of `WeightAuth.auth_method`; any other string is accepted and sent."""

    # baseten 0.13.1: TrainingWeightAuth
    CUSTOM_SECRET: Final = "CUSTOM_SECRET"
    AWS_OIDC: Final = "AWS_OIDC"
    GCP_OIDC: Final = "GCP_OIDC"
    AWS_ASSUME_ROLE: Final = "AWS_ASSUME_ROLE"


class SessionTrigger:
    """When an interactive session is created (`InteractiveSessionConfig.trigger`)."""

    ON_STARTUP: Final = "on_startup"
    ON_FAILURE: Final = "on_failure"
    ON_DEMAND: Final = "on_demand"


class SessionProvider:
    """The IDE an interactive session serves (`InteractiveSessionConfig.session_provider`)."""

    VS_CODE: Final = "vs_code"
    CURSOR: Final = "cursor"
    SSH: Final = "ssh"


class SessionAuthProvider:
    """How a user signs in to a session (`InteractiveSessionConfig.auth_provider`)."""

    GITHUB: Final = "github"
    MICROSOFT: Final = "microsoft"


class CheckpointTarget:
    """Where a Loops checkpoint is loaded (`LoopsCheckpoint.target`)."""

    TRAINER: Final = "trainer"
    SAMPLER: Final = "sampler"


class CheckpointSyncStatus:
    """Known values of `TrainingJob.checkpoint_sync_status`."""

    SYNCING: Final = "SYNCING"
    COMPLETED: Final = "COMPLETED"


class LogLevel:
    """Log severities, lowest first."""

    DEBUG: Final = "DEBUG"
    INFO: Final = "INFO"
    WARNING: Final = "WARNING"
    ERROR: Final = "ERROR"


NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
SessionMinutes = Annotated[int, msgspec.Meta(ge=-1)]
"""Minutes; ``-1`` means no timeout."""

# Enum-like request values: the known ones (for editor completion) or any other
# non-empty string, which is sent as given.
AvailabilityModelValue = Literal["dedicated", "spot"] | NonEmptyStr
DockerAuthMethodValue = (
    Literal[
        "GCP_SERVICE_ACCOUNT_JSON",
        "AWS_IAM",
        "AWS_OIDC",
        "GCP_OIDC",
        "REGISTRY_SECRET",
        "AWS_ASSUME_ROLE",
    ]
    | NonEmptyStr
)
WeightAuthMethodValue = (
    Literal["CUSTOM_SECRET", "AWS_OIDC", "GCP_OIDC", "AWS_ASSUME_ROLE"] | NonEmptyStr
)
SessionTriggerValue = Literal["on_startup", "on_failure", "on_demand"] | NonEmptyStr
SessionProviderValue = Literal["vs_code", "cursor", "ssh"] | NonEmptyStr
SessionAuthProviderValue = Literal["github", "microsoft"] | NonEmptyStr
CheckpointTargetValue = Literal["trainer", "sampler"] | NonEmptyStr
LogLevelValue = Literal["DEBUG", "INFO", "WARNING", "ERROR"] | NonEmptyStr

# --------------------------------------------------------------------------- #
# Request models: what a caller builds to create a job.                       #
# --------------------------------------------------------------------------- #


class _Request(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Base for request models: strict on input, minimal on the wire.

    ``UNSET`` fields are never encoded; ``omit_defaults`` drops the ``None``
    of a field left at (or explicitly set to) its ``None`` default.
    """


class SecretReference(_Request):
    """A reference to a workspace secret, by name."""

    name: NonEmptyStr


class GcpServiceAccountJsonDockerAuth(_Request):
    """Registry auth with a GCP service-account JSON stored as a secret."""

    service_account_json_secret_ref: SecretReference


class AwsIamDockerAuth(_Request):
    """Registry auth with AWS IAM keys stored as secrets."""

    access_key_secret_ref: SecretReference
    secret_access_key_secret_ref: SecretReference


class AwsOidcDockerAuth(_Request):
    """Registry auth with AWS OIDC role assumption."""

    role_arn: NonEmptyStr
    region: NonEmptyStr


class GcpOidcDockerAuth(_Request):
    """Registry auth with GCP workload identity federation."""

    service_account: NonEmptyStr
    workload_identity_provider: NonEmptyStr


class RegistrySecretDockerAuth(_Request):
    """Registry auth with a username/password secret."""

    secret_ref: SecretReference


class AwsAssumeRoleDockerAuth(_Request):
    """Registry auth by a role Baseten assumes with its own AWS principal.

    The role's trust policy must allow Baseten's principal with your
    organisation's external ID.
    """

    # baseten 0.13.1: AwsAssumeRoleDockerAuth
    role_arn: NonEmptyStr
    region: NonEmptyStr


class DockerAuth(_Request):
    """Credentials for pulling a private base image.

    Set ``auth_method`` and the one matching ``*_docker_auth`` field.
    """

    registry: NonEmptyStr
    auth_method: DockerAuthMethodValue
    gcp_service_account_json_docker_auth: GcpServiceAccountJsonDockerAuth | None = None
    aws_iam_docker_auth: AwsIamDockerAuth | None = None
    aws_oidc_docker_auth: AwsOidcDockerAuth | None = None
    gcp_oidc_docker_auth: GcpOidcDockerAuth | None = None
    registry_secret_docker_auth: RegistrySecretDockerAuth | None = None
    aws_assume_role_docker_auth: AwsAssumeRoleDockerAuth | None = None  # baseten 0.13.1: DockerAuth


class Image(_Request):
    """The container image a job runs."""

    base_image: NonEmptyStr
    docker_auth: DockerAuth | None = None


class Accelerator(_Request):
    """GPUs per node, e.g. ``Accelerator(accelerator="H100", count=8)``."""

    accelerator: NonEmptyStr
    count: NonNegativeInt


class Compute(_Request):
    """Compute resources for a job.

    Unset fields take the server's defaults: one node, one CPU, ``"2Gi"`` of
    memory, no GPU, ``"dedicated"`` capacity.
    """

    node_count: PositiveInt | UnsetType = UNSET
    cpu_count: PositiveInt | UnsetType = UNSET
    memory: NonEmptyStr | UnsetType = UNSET
    accelerator: Accelerator | None = None
    availability_model: AvailabilityModelValue | UnsetType = UNSET


class S3Artifact(_Request):
    """An S3 object made available to the job's runtime."""

    s3_bucket: NonEmptyStr
    s3_key: NonEmptyStr


class CacheConfig(_Request):
    """The read-write cache shared across a project's jobs.

    Server defaults: disabled, no legacy Hugging Face mount, cache affinity
    required, mounted under ``/root/.cache``.
    """

    enable_legacy_hf_mount: bool | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    require_cache_affinity: bool | UnsetType = UNSET
    mount_base_path: str | UnsetType = UNSET


class CheckpointingConfig(_Request):
    """Where and how a job writes checkpoints (disabled unless ``enabled``)."""

    enabled: bool | UnsetType = UNSET
    checkpoint_path: str | None = None
    volume_size_gib: PositiveInt | None = None


class BasetenLatestCheckpoint(_Request, tag_field="typ", tag="baseten_latest_checkpoint"):
    """Load the latest checkpoint of a project or job."""

    project_name: str | None = None
    job_id: str | None = None


class BasetenNamedCheckpoint(_Request, tag_field="typ", tag="baseten_named_checkpoint"):
    """Load a checkpoint by name."""

    checkpoint_name: NonEmptyStr
    project_name: str | None = None
    job_id: str | None = None


class LoopsCheckpoint(_Request, tag_field="typ", tag="loops_checkpoint"):
    """Load a checkpoint produced by a Loops run."""

    run_id: NonEmptyStr
    checkpoint_name: NonEmptyStr
    target: CheckpointTargetValue | UnsetType = UNSET  # server default: "trainer"


CheckpointSource = BasetenLatestCheckpoint | BasetenNamedCheckpoint | LoopsCheckpoint


class LoadCheckpointConfig(_Request):
    """Checkpoints to download into the job before it starts.

    Server defaults: disabled, downloaded to ``/tmp/loaded_checkpoints``.
    """

    enabled: bool | UnsetType = UNSET
    download_folder: str | UnsetType = UNSET
    checkpoints: list[CheckpointSource] | None = None


class Runtime(_Request):
    """What the job runs and the environment it runs in.

    ``artifacts`` and the collections accept ``None`` (the API docs' examples
    send ``"artifacts": null``); ``None`` is sent as "not set".
    """

    start_commands: list[str] | None = None
    environment_variables: dict[str, str | SecretReference] | None = None
    artifacts: list[S3Artifact] | None = None
    enable_cache: bool | None = None
    cache_config: CacheConfig | None = None
    checkpointing_config: CheckpointingConfig | None = None
    load_checkpoint_config: LoadCheckpointConfig | None = None


class GitInfo(_Request):
    """Git state of the code that launched the job."""

    latest_commit_sha: str
    latest_tag: str | None
    commits_since_tag: int | None
    has_uncommitted_changes: bool


class TrussUserEnv(_Request):
    """Client environment metadata, as truss sends it."""

    truss_client_version: str | None = None
    python_version: str | None = None
    pydantic_version: str | None = None
    mypy_version: str | None = None
    is_library_deployment: bool | UnsetType = UNSET
    is_frontend_deployment: bool | UnsetType = UNSET
    git_info: GitInfo | None = None


class InteractiveSessionConfig(_Request):
    """An interactive debugging session attached to the job.

    Server defaults: created on demand, times out after 480 minutes, VS Code
    with GitHub sign-in.
    """

    trigger: SessionTriggerValue | UnsetType = UNSET
    timeout_minutes: SessionMinutes | UnsetType = UNSET  # -1: never times out
    session_provider: SessionProviderValue | UnsetType = UNSET
    auth_provider: SessionAuthProviderValue | UnsetType = UNSET


class WeightAuth(_Request):
    """How the weights of a `WeightSource` are fetched.

    Set ``auth_method`` (see `WeightAuthMethod`) and the fields it needs:
    ``auth_secret_name`` for ``CUSTOM_SECRET``, ``aws_oidc_*`` for
    ``AWS_OIDC``, ``gcp_oidc_*`` for ``GCP_OIDC``, ``aws_assume_role_*`` for
    ``AWS_ASSUME_ROLE``.
    """

    # baseten 0.13.1: TrainingWeightAuth (the published spec has a free-form object)
    auth_method: WeightAuthMethodValue
    auth_secret_name: str | None = None
    aws_oidc_role_arn: str | None = None
    aws_oidc_region: str | None = None
    gcp_oidc_service_account: str | None = None
    gcp_oidc_workload_id_provider: str | None = None
    aws_assume_role_arn: str | None = None
    aws_assume_role_region: str | None = None


class WeightSource(_Request):
    """Model weights mounted into the container.

    ``source`` is a URI: ``hf://``, ``s3://``, ``gs://``, ``r2://`` or
    ``cw://`` (``cw://`` from baseten 0.13.1: CreateJobWeightConfig).
    """

    source: NonEmptyStr
    mount_location: NonEmptyStr
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None
    auth_secret_name: str | None = None
    auth: WeightAuth | None = None


class TrainingJobSpec(_Request):
    """Everything needed to create a training job (``CreateTrainingJobV1``).

    Example:
        >>> TrainingJobSpec(
        ...     image=Image(base_image="hello-world"),
        ...     compute=Compute(accelerator=Accelerator(accelerator="H100", count=2)),
        ...     runtime=Runtime(start_commands=["python train.py"]),
        ...     name="llama-sft-1",
        ... )  # doctest: +SKIP

    Give jobs a ``name`` unique within the project: the SDK uses it to find
    out whether a create whose response was lost really started a job.
    """

    image: Image
    compute: Compute | None = None
    runtime: Runtime | None = None
    name: str | None = None
    truss_user_env: TrussUserEnv | None = None
    interactive_session: InteractiveSessionConfig | None = None
    weights: list[WeightSource] | None = None
    enable_baseten_workdir: bool | UnsetType = UNSET
    priority: int | None = None


# --------------------------------------------------------------------------- #
# Response models: what the API returns. Unknown fields are ignored.          #
# --------------------------------------------------------------------------- #


class _Response(msgspec.Struct, kw_only=True, gc=False):
    """Base for response models."""


class InstanceType(_Response):
    """The machine type a job runs on."""

    id: str
    name: str
    memory_limit_mib: int
    millicpu_limit: int
    gpu_count: int
    gpu_type: str | None
    gpu_memory_limit_mib: int | None


class TrainingProjectSummary(_Response):
    """A project's id and name, as embedded in a job."""

    id: str
    name: str


class User(_Response):
    """The user that created a job."""

    email: str | None = None


class TrainingJob(_Response):
    """A training job."""

    id: str
    created_at: str
    current_status: str
    instance_type: InstanceType
    updated_at: str
    training_project_id: str
    training_project: TrainingProjectSummary
    error_message: str | None = None
    node_count: int = 1  # baseten 0.13.1: TrainingJob (total GPUs = gpu_count * node_count)
    name: str | None = None
    checkpoint_sync_status: str | None = None
    priority: int = 0
    availability_model: str = "dedicated"
    user: User | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished (an unknown status counts as finished)."""
        return JobStatus.is_terminal(self.current_status)


class FinishedJob(TrainingJob):
    """A job as a wait left it: terminal, with what the wait learnt about it.

    Attributes:
        log_tail: The last log lines of a failed job, oldest first, when the
            wait asked for them (``log_tail=N``); None otherwise.
        stopped_for: Why the wait stopped the job (``"timeout"``,
            ``"max_pending"``, ``"max_running"``); None if it did not.
    """

    log_tail: list[LogLine] | None = None
    stopped_for: str | None = None


class TrainingProject(_Response):
    """A training project."""

    id: str
    name: str
    created_at: str
    updated_at: str
    latest_job: TrainingJob | None
    team_name: str | None = None


class ProjectTombstone(_Response):
    """What deleting a project returns."""

    id: str
    deleted: bool


class JobTombstone(_Response):
    """What deleting a job returns."""

    id: str
    deleted: bool
    training_project_id: str


class LogLine(_Response):
    """One log line. ``timestamp`` is epoch nanoseconds as a decimal string."""

    timestamp: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,25}$")]
    message: str
    replica: str | None
    request_id: str | None = None
    level: str | None = None

    @property
    def timestamp_ns(self) -> int:
        """The timestamp as integer epoch nanoseconds."""
        return int(self.timestamp)


class MetricPoint(_Response):
    """One sample of a metric time series."""

    value: float
    timestamp: str


class StorageMetrics(_Response):
    """Usage of a storage volume over time."""

    usage_bytes: list[MetricPoint]
    utilization: list[MetricPoint]


class ResourceMetrics(_Response):
    """CPU, GPU and storage series of a job or of one of its nodes."""

    gpu_memory_usage_bytes: dict[str, list[MetricPoint]]
    gpu_utilization: dict[str, list[MetricPoint]]
    cpu_usage: list[MetricPoint]
    cpu_memory_usage_bytes: list[MetricPoint]
    ephemeral_storage: StorageMetrics


class JobNodeMetrics(_Response):
    """Metrics of one node of a multi-node job."""

    node_id: str
    metrics: ResourceMetrics


class JobMetrics(ResourceMetrics):
    """Resource metrics of a job (``GetTrainingJobMetricsResponseV1``)."""

    training_job: TrainingJob
    cache: StorageMetrics | None
    per_node_metrics: list[JobNodeMetrics]


class Checkpoint(_Response):
    """A checkpoint a job has written."""

    checkpoint_id: str
    created_at: str
    checkpoint_type: str
    base_model: str | None
    lora_adapter_config: dict[str, Any] | None
    size_bytes: int
    training_job_id: str
    sync_status: str | None = None


class CheckpointFile(_Response):
    """One file of a job's checkpoints, with a presigned download URL."""

    url: str
    relative_file_name: str
    node_rank: int
    size_bytes: int
    last_modified: str


class FileSummary(_Response):
    """One file in a project's cache."""

    path: str
    size_bytes: int
    modified: str
    file_type: str
    permissions: str


class CacheSummary(_Response):
    """The contents of a project's cache."""

    timestamp: str
    project_id: str
    file_summaries: list[FileSummary]


class GpuCapacity(_Response):
    """Organisation-wide GPU capacity for one GPU type."""

    gpu_type: str
    baseline: int
    limit: int
    usage_count: int
    # baseten 0.13.1: TrainingGpuCapacityItem, TeamTrainingGpuCapacityItem
    dedicated_usage_count: int = 0
    spot_usage_count: int = 0


class TeamGpuCapacity(GpuCapacity, kw_only=True):
    """A team's GPU capacity for one GPU type."""

    team_id: str
    team_name: str


class TrainingCapacity(_Response):
    """Training GPU capacity (``GetTrainingGpuCapacityResponseV1``)."""

    gpu_capacities: list[GpuCapacity]
    # Nullable in baseten 0.13.1: GetTrainingGpuCapacityResponse
    team_gpu_capacities: list[TeamGpuCapacity] | None = msgspec.field(default_factory=list)


class Team(_Response):
    """A team of the organisation (``TeamV1``)."""

    id: str
    name: str
    default: bool
    created_at: str


class AuthCode(_Response):
    """A sign-in code for a job's interactive session (``AuthCodeV1``)."""

    session_id: str
    replica_id: str
    auth_code: str
    auth_url: str
    generated_at: str | None = None
    tunnel_name: str | None = None
    expires_at: str | None = None
    working_directory: str | None = None


class InteractiveSession(_Response):
    """An interactive session of a job (``InteractiveSessionV1``)."""

    id: str
    trigger: str
    timeout_minutes: int
    session_provider: str
    auth_provider: str
    pod_name: str
    expires_at: str | None = None
    tunnel_name: str | None = None
    auth_code: str | None = None
    auth_url: str | None = None
    auth_code_generated_at: str | None = None
    authenticated_at: str | None = None
    working_directory: str | None = None


class InteractiveSessionUpdate(_Response):
    """What changing an interactive session returns (``PatchInteractiveSessionResponseV1``)."""

    interactive_session: InteractiveSession
    message: str


class SSHCertificate(_Response):
    """A signed SSH certificate for a job's session (``SignSSHCertificateResponseV1``)."""

    ssh_certificate: str
    jwt: str
    proxy_address: str
    ssh_cert_expires_at: str

    def __repr__(self) -> str:
        return (
            f"SSHCertificate(proxy_address={self.proxy_address!r}, "
            f"ssh_cert_expires_at={self.ssh_cert_expires_at!r}, ...)"
        )


class AWSCredentials(_Response):
    """Temporary AWS credentials (``AWSCredentialsV1``)."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str

    def __repr__(self) -> str:
        return f"AWSCredentials(aws_access_key_id={self.aws_access_key_id!r}, ...)"


class BlobCredentials(_Response):
    """Where and with what to upload a training artifact (``GetBlobCredentialsResponseV1``).

    Upload to ``s3://{s3_bucket}/{s3_key}`` with ``creds``, then pass
    ``S3Artifact(s3_bucket=..., s3_key=...)`` in the job's `Runtime`.
    """

    creds: AWSCredentials
    s3_key: str
    s3_bucket: str


class CapacityAtSubmit(_Response):
    """GPU capacity in force when a job was submitted (``CapacityAtSubmitV1``)."""

    gpu_type: str
    max_gpus: int
    last_modified: str
    min_gpus: int | None = None


class ActiveJobAtSubmit(_Response):
    """A job that held GPUs when another was submitted (``ActiveJobAtSubmitV1``)."""

    training_job_id: str
    instance_type_name: str
    total_gpus: int
    workload_plane_name: str
    status_at_submit: str
    status_set_at: str
    training_job_name: str | None = None


class PendingJobAheadAtSubmit(_Response):
    """A job queued ahead of another when it was submitted (``PendingJobAheadAtSubmitV1``)."""

    training_job_id: str
    instance_type_name: str
    requested_gpus: int
    priority: int
    submitted_at: str
    training_job_name: str | None = None


class QueueEvent(_Response):
    """A status change in the queue since a job was submitted (``QueueEventV1``)."""

    training_job_id: str
    status: str
    created: str
    training_job_name: str | None = None
    event_message: str | None = None
    exit_code: int | None = None


class QueueContext(_Response):
    """Why a job waits in the queue (``GetTrainingJobQueueContextResponseV1``)."""

    target_job_id: str
    gpu_type: str
    requested_gpus: int
    submitted_at: str
    active_at_submit: list[ActiveJobAtSubmit]
    pending_ahead_at_submit: list[PendingJobAheadAtSubmit]
    events: list[QueueEvent]
    events_window_end: str
    target_job_name: str | None = None
    released_at: str | None = None
    pending_seconds: int | None = None
    org_capacity: CapacityAtSubmit | None = None
    team_capacity: CapacityAtSubmit | None = None
