"""The stack configuration: one team's ML platform in one environment, as one strict model.

Stack YAML -> `StackConfig` (this module; `extra="forbid"`, frozen) -> typed component args.
Field-level rules (types, ranges, AWS enums and patterns) live on the fields; rules across fields
(references between sections, environment policy, derived AWS names) live in `specs.config.rules`,
which `specs.config.stack_files` runs after this model validates.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: only the program entry point reads `pulumi.Config`; this package
validates what it read).
"""
from __future__ import annotations

import difflib
import functools
import re
from typing import Annotated, Literal, Union

import botocore.session

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from specs.config import instance_types
from specs.k8s.cluster_autoscaler import CLUSTER_AUTOSCALER_TAGS

Environment = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[str, ...] = ("local", "dev", "staging", "prod")
REQUIRED_TAGS: tuple[str, ...] = ("CostCenter", "Owner")

SLUG_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
SLUG_ALLOWED = "lowercase letters, digits and single hyphens, starting with a letter (e.g. 'fraud-detection')"


def _slug(value: str) -> str:
    if not re.match(SLUG_PATTERN, value):
        shown = repr(value) if len(value) <= 80 else f"{value[:80]!r}... ({len(value)} characters)"
        raise ValueError(f"{shown} is not a valid name; allowed: {SLUG_ALLOWED}")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
"""Keys that become parts of AWS names (team, endpoints, variants, models, feature groups)."""


def _endpoint_instance(value: str) -> str:
    return instance_types.check(value, instance_types.ENDPOINT_SHAPE, purpose="endpoint")


def _training_instance(value: str) -> str:
    return instance_types.check(value, instance_types.TRAINING_SHAPE, purpose="training")


def _processing_instance(value: str) -> str:
    return instance_types.check(value, instance_types.PROCESSING_SHAPE, purpose="processing")


EndpointInstanceType = Annotated[str, AfterValidator(_endpoint_instance)]
TrainingInstanceType = Annotated[str, AfterValidator(_training_instance)]
ProcessingInstanceType = Annotated[str, AfterValidator(_processing_instance)]
AccountId = Annotated[str, Field(pattern=r"^\d{12}$", description="A 12-digit AWS account id, quoted in YAML.")]
S3Uri = Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    # No inf/NaN: YAML spells them .inf and .nan, and no AWS limit or weight means anything with them.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, allow_inf_nan=False)


# --------------------------------------------------------------------------------------------
# Account, tags, images, network


@functools.lru_cache(maxsize=None)
def regions_offering(service: str) -> tuple[str, ...]:
    """Every region, in every AWS partition, where botocore's endpoint data says `service` is offered."""
    session = botocore.session.get_session()
    return tuple(sorted({
        region for partition in session.get_available_partitions()
        for region in session.get_available_regions(service, partition_name=partition)
    }))


def region_problem(region: str, *, service: str, purpose: str) -> str | None:
    """Why `region` cannot host `service`, with the closest region that can, or None."""
    allowed = regions_offering(service)
    if region in allowed:
        return None
    close = difflib.get_close_matches(region, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = repr(region) if len(region) <= 60 else f"{region[:60]!r}... ({len(region)} characters)"
    return f"{shown} is not an AWS region that offers {purpose}{hint} (regions with {purpose}, from botocore: {', '.join(allowed)})"


def _sagemaker_region(region: str) -> str:
    problem = region_problem(region, service="sagemaker", purpose="SageMaker")
    if problem:
        raise ValueError(problem)
    return region


class AwsTarget(Strict):
    """Where the stack deploys. Taken from the AWS provider's config (`aws:region`, `aws:allowedAccountIds`)."""

    account_id: AccountId
    region: Annotated[str, AfterValidator(_sagemaker_region)]
    """A region that offers SageMaker (botocore's endpoint data, every partition)."""


def _tags(tags: dict[str, str]) -> dict[str, str]:
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        raise ValueError(
            f"missing mandatory tag(s) {', '.join(missing)}; every stack must tag its resources with "
            f"{' and '.join(REQUIRED_TAGS)} for cost allocation and ownership"
        )
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} uses the reserved prefix 'aws:'")
        if not 1 <= len(key) <= 128:
            raise ValueError(f"tag key {key!r} is {len(key)} characters; AWS allows 1 to 128")
        if len(value) > 256:
            raise ValueError(f"tag {key!r} value is {len(value)} characters; AWS allows 256")
        if not re.match(r"^[\w .:/=+\-@]*$", key + value):
            raise ValueError(f"tag {key}={value!r} has characters AWS tags do not allow (letters, digits, spaces, _ . : / = + - @)")
    if len(tags) > 40:
        raise ValueError(f"{len(tags)} tags; the framework adds 10 of its own and AWS allows 50 per resource")
    return tags


Tags = Annotated[dict[str, str], AfterValidator(_tags)]


class Images(Strict):
    """The container images the stack runs. Tags are immutable in our ECR repositories: pin versions."""

    training_tag: Annotated[str, Field(pattern=r"^[\w][\w.-]{0,127}$")] = "0.1.0"
    """Tag of the team's training image in its ECR repository. @default "0.1.0"."""
    serving_tag: Annotated[str, Field(pattern=r"^[\w][\w.-]{0,127}$")] = "0.1.0"
    """Tag of the team's serving image in its ECR repository. @default "0.1.0"."""
    training_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    """Digest (`sha256:<64 hex>`) of the training image; when set the stack runs `<repository>@<digest>`
    instead of the tag (CI writes the digest it built, scanned and pushed). @default none: the tag."""
    serving_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    """Digest of the serving image, like `training_digest`. @default none: the tag."""
    cluster_autoscaler_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    """Digest of the cluster-autoscaler release a created EKS cluster runs (the tag its Kubernetes minor
    pins, specs.k8s.cluster_autoscaler); when set the Deployment runs `<image>:<tag>@<digest>`. CI resolves
    the tag in the registry and writes it (`mlops ci pin-images --cluster-autoscaler`). @default none: the tag."""


class Network(Strict):
    """Private networking for training jobs and endpoints (SageMaker VpcConfig)."""

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=1, max_length=16)]
    security_group_ids: Annotated[list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]], Field(min_length=1, max_length=5)]


# --------------------------------------------------------------------------------------------
# Feature store

FeatureType = Literal["Integral", "Fractional", "String"]
FeatureName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")]
# Feature Store adds these columns itself; a feature of the same name is rejected by AWS.
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})


class FeatureDefinition(Strict):
    """One typed feature (SageMaker FeatureDefinition), with the sanity checks training applies."""

    name: FeatureName
    type: FeatureType
    """SageMaker Feature Store type: Integral, Fractional or String."""
    nullable: bool = False
    """Whether training data may hold nulls in this column. @default false."""
    min: float | None = None
    """Smallest valid value (numeric features); rows below it are refused by training."""
    max: float | None = None
    """Largest valid value (numeric features)."""

    @model_validator(mode="after")
    def _range(self) -> FeatureDefinition:
        if self.name in RESERVED_FEATURE_NAMES:
            raise ValueError(f"feature name {self.name!r} is reserved by SageMaker Feature Store ({', '.join(sorted(RESERVED_FEATURE_NAMES))})")
        if self.type == "String" and (self.min is not None or self.max is not None):
            raise ValueError(f"feature {self.name!r}: min/max apply to Integral and Fractional features, not String")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is greater than max {self.max}")
        return self


class OnlineStore(Strict):
    """Low-latency store for serving-time lookups, encrypted with the stack's KMS key."""

    enabled: bool = True
    """@default true."""
    ttl_hours: Annotated[int, Field(ge=1, le=87600)] | None = None
    """Records expire this many hours after their event time. @default none (kept until deleted)."""


class FeatureGroupConfig(Strict):
    """A SageMaker Feature Group: record id, event time and typed features."""

    description: Annotated[str, Field(max_length=128)] = ""
    record_identifier: FeatureName
    """The feature that identifies a record (Integral or String)."""
    event_time: FeatureName
    """The feature that holds the record's event time (String ISO-8601 or Fractional epoch seconds)."""
    features: Annotated[list[FeatureDefinition], Field(min_length=2, max_length=2500)]
    online_store: OnlineStore = OnlineStore()
    offline_store: bool = True
    """Export to S3 and the Glue catalog (needed for training). @default true."""

    @model_validator(mode="after")
    def _identity_columns(self) -> FeatureGroupConfig:
        by_name = {f.name: f for f in self.features}
        dupes = sorted({f.name for f in self.features if [g.name for g in self.features].count(f.name) > 1})
        if dupes:
            raise ValueError(f"duplicate feature name(s) {', '.join(dupes)}")
        rid = by_name.get(self.record_identifier)
        if rid is None:
            raise ValueError(f"record_identifier {self.record_identifier!r} is not one of the features ({', '.join(by_name)})")
        if rid.type not in ("Integral", "String"):
            raise ValueError(f"record_identifier {rid.name!r} is {rid.type}; AWS allows Integral or String")
        et = by_name.get(self.event_time)
        if et is None:
            raise ValueError(f"event_time {self.event_time!r} is not one of the features ({', '.join(by_name)})")
        if et.type not in ("String", "Fractional"):
            raise ValueError(f"event_time {et.name!r} is {et.type}; AWS allows String (ISO-8601) or Fractional (epoch seconds)")
        if not (self.online_store.enabled or self.offline_store):
            raise ValueError("a feature group needs an online store, an offline store or both")
        return self


class FeatureStoreConfig(Strict):
    """The team's feature groups, keyed by name."""

    feature_groups: dict[Slug, FeatureGroupConfig] = {}


# --------------------------------------------------------------------------------------------
# Training and model registry

Hyperparameter = Union[bool, int, float, str, list[Union[int, float]]]
"""SageMaker passes every value as a string; lists (e.g. hidden_units: [64, 32]) travel as JSON."""


def _eks_gpu_instance(value: str) -> str:
    return instance_types.check_eks_gpu(value)


def _ec2_instance(value: str) -> str:
    return instance_types.check_ec2(value)


EksGpuInstanceType = Annotated[str, AfterValidator(_eks_gpu_instance)]
Ec2InstanceType = Annotated[str, AfterValidator(_ec2_instance)]
Cidr = Annotated[str, Field(pattern=r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$")]


def _kubernetes_version(value: str) -> str:
    if value not in CLUSTER_AUTOSCALER_TAGS:
        raise ValueError(f"Kubernetes version {value!r} is not supported; allowed: {', '.join(CLUSTER_AUTOSCALER_TAGS)}")
    return value


class GpuNodePool(Strict):
    """The EKS managed node group that runs training pods: NVIDIA AMI, `nvidia.com/gpu` taint, scales to zero."""

    instance_types: Annotated[list[EksGpuInstanceType], Field(min_length=1, max_length=20)] = ["g5.xlarge"]
    """EC2 types with NVIDIA GPUs (g4dn, g5, g6, g6e, p4d, p5...). @default ["g5.xlarge"]."""
    min_size: Annotated[int, Field(ge=0, le=1000)] = 0
    """@default 0: no GPU instance runs, and none is paid for, while no training pod waits."""
    max_size: Annotated[int, Field(ge=1, le=1000)] = 4
    """Upper bound for the cluster autoscaler. @default 4."""
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """@default "ON_DEMAND". SPOT is cheaper; training resumes from its S3 checkpoints after an interruption."""
    disk_size_gb: Annotated[int, Field(ge=20, le=16384)] = 200
    """Root volume per node (images with CUDA are large). @default 200."""

    @model_validator(mode="after")
    def _bounds(self) -> GpuNodePool:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is greater than max_size {self.max_size}")
        return self


class SystemNodePool(Strict):
    """A small CPU node group for cluster add-ons (CoreDNS, the autoscaler, the device plugin)."""

    instance_type: Ec2InstanceType = "m6i.large"
    """@default "m6i.large"."""
    min_size: Annotated[int, Field(ge=1, le=100)] = 2
    """@default 2 (add-ons survive the loss of one node)."""
    max_size: Annotated[int, Field(ge=1, le=100)] = 4
    """@default 4."""

    @model_validator(mode="after")
    def _bounds(self) -> SystemNodePool:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is greater than max_size {self.max_size}")
        return self


class CreatedCluster(Strict):
    """The stack creates its own EKS cluster in `network`'s subnets."""

    mode: Literal["create"]
    kubernetes_version: Annotated[str, AfterValidator(_kubernetes_version)] = "1.33"
    """EKS Kubernetes version; the cluster autoscaler's release is pinned per minor version. @default "1.33"."""
    endpoint_public_access: bool = False
    """@default false: the API server is reachable from inside the VPC only."""
    public_access_cidrs: list[Cidr] = []
    """Only with endpoint_public_access: who may reach the public API endpoint. @default none."""
    system_nodes: SystemNodePool = SystemNodePool()
    gpu_nodes: GpuNodePool = GpuNodePool()

    @model_validator(mode="after")
    def _public(self) -> CreatedCluster:
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError("endpoint_public_access needs public_access_cidrs (AWS would open the API server to 0.0.0.0/0)")
        if self.public_access_cidrs and not self.endpoint_public_access:
            raise ValueError("public_access_cidrs applies only with endpoint_public_access: true")
        return self


class ExistingCluster(Strict):
    """A platform cluster owned by another Pulumi stack, read through a StackReference."""

    mode: Literal["existing"]
    stack: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")]
    """The owning stack as `org/project/stack`. It must export `kubeconfig` (secret), `clusterName`,
    `oidcProviderArn` and `oidcIssuer`, as a stack with `mode: create` does."""
    gpu_node_labels: dict[str, str] = {"mlops.dev/pool": "gpu"}
    """Labels that select that cluster's GPU nodes. @default {"mlops.dev/pool": "gpu"}."""


EksCluster = Annotated[Union[CreatedCluster, ExistingCluster], Field(discriminator="mode")]


class TeamQuota(Strict):
    """What the team's namespace may request at once (a ResourceQuota): fair sharing of the GPU pool."""

    gpus: Annotated[int, Field(ge=0, le=10000)] = 8
    """`requests.nvidia.com/gpu`. @default 8."""
    cpu: Annotated[int, Field(ge=1, le=100000)] = 96
    """CPU cores requested by all pods together. @default 96."""
    memory_gib: Annotated[int, Field(ge=1, le=1000000)] = 768
    """@default 768."""
    pods: Annotated[int, Field(ge=1, le=10000)] = 64
    """@default 64."""


class EksTraining(Strict):
    """Distributed training on EKS: one Indexed Job of `nodes` pods, each running torchrun over its GPUs."""

    cluster: EksCluster
    quota: TeamQuota = TeamQuota()
    nodes: Annotated[int, Field(ge=1, le=256)] = 1
    """Pods per run, one per GPU node (torchrun --nnodes). @default 1."""
    gpus_per_node: Annotated[int, Field(ge=0, le=8)] = 1
    """GPUs each pod requests, one training process per GPU (torchrun --nproc-per-node). 0 trains on
    CPU with one process per pod. @default 1."""
    cpu_per_node: Annotated[int, Field(ge=1, le=192)] = 3
    """CPU cores each pod requests (leave room for the node's daemons). @default 3."""
    memory_gib_per_node: Annotated[int, Field(ge=1, le=2048)] = 12
    """@default 12."""
    priority: Literal["low", "normal", "high"] = "normal"
    """The team's PriorityClass for its runs; low never preempts. @default "normal"."""


class TrainingConfig(Strict):
    """Where and how the team's models train: SageMaker managed training (default) or the team's EKS
    GPU cluster. Both run the same training image and register into the same Model Package Group."""

    kind: Literal["sagemaker", "eks"] = "sagemaker"
    """@default "sagemaker": a SageMaker Pipeline runs a managed training job per retrain. "eks" runs
    an Indexed Job with torchrun on the EKS GPU node pool described under `eks`."""
    eks: EksTraining | None = None
    """Required with kind "eks"; not allowed otherwise."""
    instance_type: TrainingInstanceType = "ml.m5.xlarge"
    """@default "ml.m5.xlarge" (CPU). GPU types (g5, g6, p4d, p5) run the same image with CUDA."""
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    """Hosts per job; above 1 the container trains with DistributedDataParallel. @default 1."""
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    """@default 30."""
    max_runtime_hours: Annotated[int, Field(ge=1, le=672)] = 24
    """SageMaker stops a job after this long (AWS maximum 28 days). @default 24."""
    use_spot: bool = False
    """Managed spot training with checkpoints to S3; interrupted jobs resume. @default false."""
    max_wait_hours: Annotated[int, Field(ge=1, le=672)] | None = None
    """Spot only: longest wait for capacity plus runtime. @default max_runtime_hours * 2."""
    hyperparameters: dict[str, Hyperparameter] = {}
    """Passed to the container as hyperparameters.json (SageMaker sends every value as a string)."""
    schedule: Annotated[str, Field(pattern=r"^(cron|rate)\(.+\)$")] | None = None
    """EventBridge Scheduler expression for periodic retraining, e.g. "cron(0 3 ? * MON *)". @default none."""

    @model_validator(mode="after")
    def _spot(self) -> TrainingConfig:
        if self.kind == "eks":
            if self.eks is None:
                raise ValueError("kind 'eks' needs an `eks` section (cluster, quota, nodes, gpus_per_node)")
            sagemaker_only = sorted(self.model_fields_set & SAGEMAKER_TRAINING_FIELDS)
            if sagemaker_only:
                raise ValueError(
                    f"{', '.join(sagemaker_only)} {'applies' if len(sagemaker_only) == 1 else 'apply'} to kind 'sagemaker' only; with kind 'eks' set the node pool "
                    f"under eks.cluster.gpu_nodes and the run's shape under eks (remove them, or set them to null in an override)"
                )
        elif self.eks is not None:
            raise ValueError("`eks` applies to kind 'eks' only; set kind: eks or remove it")
        if self.max_wait_hours is not None:
            if not self.use_spot:
                raise ValueError("max_wait_hours applies to spot training only; set use_spot: true or remove it")
            if self.max_wait_hours < self.max_runtime_hours:
                raise ValueError(
                    f"max_wait_hours ({self.max_wait_hours}) must be at least max_runtime_hours ({self.max_runtime_hours}) (AWS rule)"
                )
        return self


SAGEMAKER_TRAINING_FIELDS = frozenset({"instance_type", "instance_count", "volume_size_gb", "use_spot", "max_wait_hours"})

Task = Literal["binary_classification", "regression"]
GateMetric = Literal["auc", "accuracy", "log_loss", "rmse", "mae", "r2"]
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "rmse", "mae"})
TASK_METRICS: dict[str, frozenset[str]] = {
    "binary_classification": frozenset({"auc", "accuracy", "log_loss"}),
    "regression": frozenset({"rmse", "mae", "r2"}),
}


# --------------------------------------------------------------------------------------------
# Hyperparameter tuning (issue #20)

TunableName = Literal["learning_rate", "weight_decay", "epochs", "hidden_width", "hidden_layers"]
"""The names `mlops_contracts.tuning.TUNABLE` lists (a test keeps them equal)."""
Objective = Literal[
    "validation:auc", "validation:accuracy", "validation:log_loss", "validation:rmse", "validation:mae", "validation:r2"
]
"""The names `mlops_contracts.tuning.OBJECTIVES` lists (a test keeps them equal)."""


class ParameterRange(Strict):
    """One hyperparameter's search range: `min`..`max` (both inclusive) and how to sample between them."""

    min: float
    max: float
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"
    """SageMaker's ScalingType; Logarithmic needs min > 0. @default "Auto"."""


class TuningConfig(Strict):
    """Hyperparameter tuning for a model's retraining: a SageMaker tuning job (Bayesian) in the cloud,
    Optuna over the same space and objective locally; the best trial goes on to evaluation."""

    objective: Objective
    """The metric the tuner optimises, one the training container emits for the model's task
    (binary_classification: validation:auc/accuracy/log_loss; regression: validation:rmse/mae/r2).
    Its direction follows the metric (log_loss, rmse and mae are minimised)."""
    search_space: Annotated[dict[TunableName, ParameterRange], Field(min_length=1)]
    """Ranges by hyperparameter: learning_rate (> 0), weight_decay (>= 0), epochs, hidden_width and
    hidden_layers (integers >= 1; hidden_width and hidden_layers go together)."""
    strategy: Literal["Bayesian"] = "Bayesian"
    """@default "Bayesian"."""
    early_stopping: bool = True
    """SageMaker stops trials that are unlikely to beat the best so far (TrainingJobEarlyStoppingType
    Auto); locally, Optuna's median pruner on the per-epoch loss. @default true."""
    max_jobs: Annotated[int, Field(ge=1, le=500)] = 8
    """Trials in all. 1..500. @default 8."""
    max_parallel_jobs: Annotated[int, Field(ge=1, le=100)] = 2
    """Trials running at once; at most max_jobs. 1..100. @default 2."""

    @model_validator(mode="after")
    def _ranges(self) -> TuningConfig:
        from mlops_contracts.tuning import TUNABLE

        problems: list[str] = []
        for name, rng in self.search_space.items():
            tunable = TUNABLE[name]
            where = f"search_space.{name}"
            if tunable.kind == "Integer" and not (rng.min.is_integer() and rng.max.is_integer()):
                problems.append(f"{where}: {name} is an integer; got min={rng.min:g}, max={rng.max:g}")
            low_ok = rng.min >= tunable.minimum if tunable.minimum_inclusive else rng.min > tunable.minimum
            if not low_ok:
                bound = ">=" if tunable.minimum_inclusive else ">"
                problems.append(f"{where}.min={rng.min:g}: allowed {bound} {tunable.minimum:g} ({tunable.doc})")
            if rng.min >= rng.max:
                problems.append(f"{where}: min ({rng.min:g}) must be below max ({rng.max:g})")
            if rng.scaling in ("Logarithmic", "ReverseLogarithmic") and rng.min <= 0:
                problems.append(f"{where}: scaling {rng.scaling} needs min > 0, got {rng.min:g}")
        if ("hidden_width" in self.search_space) != ("hidden_layers" in self.search_space):
            problems.append("search_space: hidden_width and hidden_layers go together (give both or neither)")
        if self.max_parallel_jobs > self.max_jobs:
            problems.append(f"max_parallel_jobs ({self.max_parallel_jobs}) must be at most max_jobs ({self.max_jobs})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def direction(self) -> Literal["Maximize", "Minimize"]:
        from mlops_contracts.tuning import OBJECTIVES

        return OBJECTIVES[self.objective][1]


class ModelConfig(Strict):
    """A model the team trains, registers and serves: one SageMaker Model Package Group."""

    description: Annotated[str, Field(max_length=1024)] = ""
    feature_group: Slug
    """The feature group (key under feature_store.feature_groups) whose offline store it trains on."""
    label: FeatureName
    """The feature to predict; it is excluded from the model's inputs."""
    task: Task
    approval: Literal["manual", "auto"] = "manual"
    """Registered versions start PendingManualApproval (manual) or Approved (auto). @default "manual"."""
    gates: dict[GateMetric, float] = {}
    """Evaluation gates, e.g. {auc: 0.85}: a minimum for higher-is-better metrics, a maximum for
    log_loss, rmse and mae. Promotion into this environment refuses versions that miss one."""
    max_regression: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Promotion refuses a version whose gated metrics are worse than the target's champion by more
    than this (absolute). @default 0.01."""
    ground_truth_uri: S3Uri | None = None
    """Where the ground-truth labels of this model's predictions arrive: SageMaker Model Monitor's
    ground-truth JSON lines (`groundTruthData` plus `eventMetadata.eventId`, the captured inference id)
    under `yyyy/mm/dd/hh/`. Captured requests joined with these labels become the label events of the
    next training set (`mlops-train dataset --captures ... --ground-truth ...`). Must be in the stack's
    features bucket, which training reads. @default `s3://<team>-<env>-features-<account>/ground-truth/<model>/`."""
    training_window_days: Annotated[int, Field(ge=1, le=3650)] = 30
    """How far back the retraining pipeline's Dataset step reaches: label events with a label time in
    (run start - N days, run start] (`mlops-train dataset --window-days N --as-of <run start>`), so each
    run trains on recent data. 1..3650. @default 30."""
    tuning: TuningConfig | None = None
    """Opt-in: the retraining pipeline tunes hyperparameters (a tuning step instead of the single
    training step) and evaluates the best trial. @default none."""

    @model_validator(mode="after")
    def _tuning_objective(self) -> ModelConfig:
        if self.tuning is not None:
            from mlops_contracts.tuning import OBJECTIVES

            emitted = sorted(name for name, (task, _) in OBJECTIVES.items() if task == self.task)
            if self.tuning.objective not in emitted:
                raise ValueError(
                    f"tuning.objective {self.tuning.objective!r} is not emitted for task {self.task!r}; "
                    f"allowed: {', '.join(emitted)}"
                )
        return self


class ModelRegistryConfig(Strict):
    """Model Package Groups and who may read them."""

    models: dict[Slug, ModelConfig] = {}
    cross_account_readers: list[AccountId] = []
    """Accounts (staging, prod) allowed to describe and deploy approved packages. @default none."""


# --------------------------------------------------------------------------------------------
# Endpoints


class Variant(Strict):
    """One production or shadow variant: a pinned model version on a fleet of instances."""

    model_version: Annotated[int, Field(ge=1)]
    """Version in the model's Model Package Group; promotion writes it."""
    model_data_url: S3Uri
    """The version's model.tar.gz (its ModelDataUrl in the registry); promotion writes it."""
    instance_type: EndpointInstanceType = "ml.c6i.large"
    """@default "ml.c6i.large"."""
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    """@default 1; prod requires at least 2 per production variant."""


class WeightedVariant(Variant):
    """A production variant in an A/B test."""

    weight: float
    """Relative share of traffic; must be greater than 0 (shares are weight / sum of weights)."""

    @field_validator("weight")
    @classmethod
    def _positive(cls, weight: float) -> float:
        if not weight > 0:
            raise ValueError(f"A/B weight must be greater than 0, got {weight}; remove the variant to send it no traffic")
        return weight


def _one_variant(kind: str):
    def check(variants: dict[str, Variant]) -> dict[str, Variant]:
        if len(variants) != 1:
            raise ValueError(
                f"{kind} takes exactly one variant (AWS allows one production and one shadow variant in shadow mode); "
                f"got {len(variants)}: {', '.join(variants) or 'none'}"
            )
        return variants

    return check


class SingleTraffic(Strict):
    """All traffic to one production variant."""

    mode: Literal["single"]
    variants: Annotated[dict[Slug, Variant], AfterValidator(_one_variant("single mode"))]


class ABTraffic(Strict):
    """Weighted production variants (AWS allows up to 10 per endpoint)."""

    mode: Literal["ab"]
    variants: Annotated[dict[Slug, WeightedVariant], Field(min_length=2, max_length=10)]

    def shares(self) -> dict[str, float]:
        """Each variant's fraction of traffic."""
        total = sum(v.weight for v in self.variants.values())
        return {name: v.weight / total for name, v in self.variants.items()}


class ShadowTraffic(Strict):
    """One production variant answers; one shadow variant gets a copy of requests, never answering."""

    mode: Literal["shadow"]
    production: Annotated[dict[Slug, Variant], AfterValidator(_one_variant("production in shadow mode"))]
    shadow: Annotated[dict[Slug, Variant], AfterValidator(_one_variant("shadow in shadow mode"))]
    shadow_sampling_percent: Annotated[int, Field(ge=1, le=100)] = 100
    """Share of production requests copied to the shadow variant. @default 100."""

    @model_validator(mode="after")
    def _distinct(self) -> ShadowTraffic:
        if set(self.production) & set(self.shadow):
            raise ValueError(f"variant name {next(iter(self.production))!r} is used for both production and shadow")
        return self


Traffic = Annotated[Union[SingleTraffic, ABTraffic, ShadowTraffic], Field(discriminator="mode")]


class _Rollout(Strict):
    wait_minutes: Annotated[int, Field(ge=0, le=60)] = 10
    """Baking period after each traffic shift (AWS: 0-3600 s). @default 10."""
    termination_wait_minutes: Annotated[int, Field(ge=0, le=60)] = 5
    """Time the old fleet is kept after the shift completes (AWS: 0-3600 s). @default 5."""
    max_execution_minutes: Annotated[int, Field(ge=10, le=480)] = 120
    """Upper bound on the whole deployment (AWS: 600-28800 s). @default 120."""
    automatic: bool | None = None
    """Roll an approved version out by itself (`mlops rollout`): shadow beside the champion, shadow
    analysis, then this blue/green update, each step a pin change in the stack file. @default on in
    dev, off elsewhere."""


class AllAtOnceRollout(_Rollout):
    """Blue/green: shift all traffic at once, bake, roll back on any alarm."""

    strategy: Literal["all_at_once"]


class CanaryRollout(_Rollout):
    """Blue/green with a canary: a share of the new fleet first, then the rest."""

    strategy: Literal["canary"]
    canary_percent: Annotated[int, Field(ge=1, le=50)] = 10
    """Share of the new fleet's capacity that takes traffic first (AWS: at most 50 %). @default 10."""


class LinearRollout(_Rollout):
    """Blue/green in equal steps."""

    strategy: Literal["linear"]
    step_percent: Annotated[int, Field(ge=10, le=50)] = 25
    """Capacity shifted per step (AWS: 10-50 % of the new fleet). @default 25."""


class NoRollout(Strict):
    """Plain SageMaker update with no baking or auto-rollback. Not allowed in prod."""

    strategy: Literal["none"]


Rollout = Annotated[
    Union[AllAtOnceRollout, CanaryRollout, LinearRollout, NoRollout], Field(discriminator="strategy")
]


class Autoscaling(Strict):
    """Target tracking on SageMakerVariantInvocationsPerInstance for each production variant."""

    min_capacity: Annotated[int, Field(ge=1)] = 1
    max_capacity: Annotated[int, Field(ge=1, le=100)] = 4
    target_invocations_per_instance: Annotated[float, Field(gt=0)] = 1000
    """Invocations per instance per minute the policy aims for. @default 1000."""
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity {self.min_capacity} is greater than max_capacity {self.max_capacity}")
        return self


class DataCapture(Strict):
    """SageMaker data capture of requests and responses, encrypted with the stack's KMS key."""

    enabled: bool = True
    """@default true (the monitoring job and live quality read the captures)."""
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 100
    """@default 100."""


class FeatureLookup(Strict):
    """Online feature lookup at inference: a request may send only a record identifier (plus, optionally,
    some features, which take precedence); the serving container fetches the rest of the model's
    features from the feature group's online store with BatchGetRecord, one call per batch."""

    feature_group: Slug
    """The feature group (key under feature_store.feature_groups) to read. It needs an online store
    and every feature the model takes, with the same types."""
    record_identifier_field: FeatureName | None = None
    """The request field that holds the record identifier. @default the group's record_identifier."""
    timeout_ms: Annotated[int, Field(ge=1, le=10000)] = 100
    """Longest wait for one batch's lookup; requests that wait longer are answered 504. @default 100."""


class ShadowAnalysis(Strict):
    """When a shadow candidate may replace its champion: compared on the same mirrored requests."""

    min_requests: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    """Mirrored requests (answered by both) before the analysis decides. @default 1000."""
    decision_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    """Classification: the score at or above which a prediction is positive. @default 0.5."""
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.95
    """Classification: least share of requests whose decisions agree. @default 0.95."""
    max_difference_p99: Annotated[float, Field(ge=0)] | None = None
    """Largest 99th percentile of |shadow - champion| prediction. @default none (not checked)."""
    max_latency_p99_increase_ms: Annotated[float, Field(ge=0)] = 50.0
    """Largest increase of the shadow's p99 latency over the champion's, in ms. @default 50."""
    max_error_rate_increase: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Largest increase of the shadow's error rate over the champion's. @default 0.01."""


class ABTest(Strict):
    """How an A/B test between production variants is read out."""

    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    """Significance level of the two-sided test on the primary metric. @default 0.05."""
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8
    """Power wanted for the minimum detectable effect. @default 0.8."""
    min_detectable_effect: Annotated[float, Field(gt=0)] = 0.02
    """Smallest absolute difference of the primary metric worth detecting. @default 0.02."""
    min_labelled_per_variant: Annotated[int, Field(ge=1)] = 200
    """Labelled requests each variant needs before any recommendation but "keep". @default 200."""


class Experiment(Strict):
    """Thresholds of the endpoint's online experiments (`mlops experiment shadow|ab`)."""

    shadow: ShadowAnalysis = ShadowAnalysis()
    ab: ABTest = ABTest()


class EndpointConfig(Strict):
    """A real-time SageMaker endpoint serving one registered model."""

    model: Slug
    """The model (key under model_registry.models) whose versions the variants pin."""
    traffic: Traffic
    rollout: Rollout = AllAtOnceRollout(strategy="all_at_once")
    """Deployment guardrails for updates. @default blue/green all at once with auto-rollback."""
    autoscaling: Autoscaling | None = None
    """@default none (fixed instance counts)."""
    data_capture: DataCapture = DataCapture()
    feature_lookup: FeatureLookup | None = None
    """Fetch missing features from an online store by record id. @default none: requests carry every
    feature, and the model runs with network isolation."""
    experiment: Experiment = Experiment()
    """Shadow-analysis and A/B-readout thresholds. @default the values of each field."""

    def automatic_rollout(self, environment: str) -> bool:
        """Whether an approved version rolls out by itself here: `rollout.automatic`, else on in dev
        only. Never without blue/green guardrails (`strategy: none`)."""
        if isinstance(self.rollout, NoRollout):
            return False
        return self.rollout.automatic if self.rollout.automatic is not None else environment == "dev"

    def champion(self) -> tuple[str, Variant]:
        """The production variant that answers most traffic (ties: the first by name)."""
        production = self.production_variants()
        name = max(sorted(production), key=lambda v: getattr(production[v], "weight", 1.0))
        return name, production[name]

    def production_variants(self) -> dict[str, Variant]:
        """Variants that answer callers, by name."""
        if isinstance(self.traffic, ShadowTraffic):
            return dict(self.traffic.production)
        return dict(self.traffic.variants)

    def shadow_variants(self) -> dict[str, Variant]:
        """Variants that only receive copies, by name."""
        return dict(self.traffic.shadow) if isinstance(self.traffic, ShadowTraffic) else {}

    def all_variants(self) -> dict[str, Variant]:
        return {**self.production_variants(), **self.shadow_variants()}


# --------------------------------------------------------------------------------------------
# Monitoring

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")]


class Notifications(Strict):
    """Who hears about alarms and model approvals (subscriptions of the stack's SNS topic)."""

    emails: list[Email] = []
    """E-mail subscriptions (each must confirm the subscription mail). @default none."""
    https_endpoint_secret: str | None = None
    """Name of a secret Pulumi config key holding an HTTPS webhook URL (set with
    `pulumi config set --secret`); never put the URL in plain YAML. @default none."""

    def has_target(self) -> bool:
        return bool(self.emails or self.https_endpoint_secret)


class Thresholds(Strict):
    """Alarm thresholds per production variant."""

    latency_p99_ms: Annotated[float, Field(gt=0)] = 250
    """ModelLatency p99 over 5 minutes. @default 250."""
    errors_5xx: Annotated[int, Field(ge=1)] = 5
    """Invocation5XXErrors summed over 5 minutes. @default 5."""
    rate_4xx_percent: Annotated[float, Field(gt=0, le=100)] = 5
    """Invocation4XXErrors as a share of Invocations over 5 minutes. @default 5."""
    min_invocations_per_hour: Annotated[int, Field(ge=0)] = 1
    """Alarm when a production variant gets fewer invocations than this in an hour (0 disables). @default 1."""
    drift_psi: Annotated[float, Field(gt=0)] = 0.2
    """Population stability index above which a feature counts as drifted. @default 0.2."""


class MonitoringConfig(Strict):
    """Alarms, dashboard and the drift- and quality-monitoring schedules."""

    alarms: bool = True
    """@default true; prod requires it."""
    notifications: Notifications = Notifications()
    thresholds: Thresholds = Thresholds()
    drift_schedule: Annotated[str, Field(pattern=r"^cron\(.+\)$")] = "cron(0 * ? * * *)"
    """When the drift job runs (SageMaker MonitoringSchedule cron). @default hourly."""
    drift_instance_type: ProcessingInstanceType = "ml.m5.large"
    """@default "ml.m5.large"."""
    quality_schedule: Annotated[str, Field(pattern=r"^cron\(.+\)$")] = "cron(30 * ? * * *)"
    """When the live-quality job runs (SageMaker MonitoringSchedule cron): it joins the model's ground
    truth (`ModelConfig.ground_truth_uri`) with the endpoint's captures of the last day and publishes
    the LiveAUC/LiveAccuracy/... metrics the live-quality alarms watch. @default hourly, at half past
    (labels written on the hour are in, and it does not start with the drift job)."""


# --------------------------------------------------------------------------------------------
# Experiment tracking (issue #20)

MlflowServerSize = Literal["Small", "Medium", "Large"]


class TrackingConfig(Strict):
    """Experiment tracking: a SageMaker managed MLflow tracking server that training runs log to
    (parameters, per-epoch metrics, dataset manifest, evaluation, model artifact). Opt-in."""

    enabled: bool = False
    """@default false. With true and no `shared_stack`, the stack creates its own tracking server."""
    server_size: MlflowServerSize = "Small"
    """SageMaker's TrackingServerSize. @default "Small"."""
    mlflow_version: Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?$")] = "3.0"
    """The managed server's MLflow version. @default "3.0"."""
    shared_stack: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")] | None = None
    """Use another stack's server (org/project/stack; its `mlflowTrackingServerArn` output) instead
    of creating one. @default none."""
    weekly_maintenance_window: Annotated[str, Field(pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):\d{2}:\d{2}$")] = "Sun:03:00"
    """@default "Sun:03:00" (UTC)."""

    @model_validator(mode="after")
    def _shared(self) -> TrackingConfig:
        if self.shared_stack is not None and not self.enabled:
            raise ValueError("tracking.shared_stack needs tracking.enabled: true (or remove shared_stack)")
        if self.shared_stack is not None and self.model_fields_set & {"server_size", "mlflow_version", "weekly_maintenance_window"}:
            raise ValueError("server_size, mlflow_version and weekly_maintenance_window apply to a server this stack "
                             "creates; with shared_stack the other stack's server is used (remove them)")
        return self


# --------------------------------------------------------------------------------------------
# The stack


class CostConfig(Strict):
    """What the stack may cost a month (the plan's estimate is checked against it)."""

    monthly_budget_usd: Annotated[float, Field(gt=0, le=10_000_000)] | None = None
    """Monthly budget in USD. When set, the stack creates an AWS Budget of this amount (cost of the
    team's tagged resources in the stack's region; mails at 80 % of actual and 100 % of forecast spend
    to `monitoring.notifications.emails`), and the mandatory `monthly-budget` policy refuses a plan
    whose estimated maximum exceeds it (`mlops prices refresh` provides the prices). @default none."""


class StackConfig(Strict):
    """One team's ML platform in one environment: what `pulumi up -s <team>-<env>` builds."""

    team: Slug
    environment: Environment
    aws: AwsTarget
    tags: Tags
    images: Images = Images()
    network: Network | None = None
    """@default none: SageMaker's managed network. Set it to run endpoints and training in your VPC."""
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    training: TrainingConfig = TrainingConfig()
    model_registry: ModelRegistryConfig = ModelRegistryConfig()
    endpoints: dict[Slug, EndpointConfig] = {}
    monitoring: MonitoringConfig = MonitoringConfig()
    cost: CostConfig = CostConfig()
    tracking: TrackingConfig = TrackingConfig()
    """Experiment tracking (managed MLflow). @default off."""

    @property
    def stack_name(self) -> str:
        return f"{self.team}-{self.environment}"

    def all_tags(self) -> dict[str, str]:
        """The user's tags plus the framework's own, applied to every taggable resource."""
        return {
            **self.tags,
            "mlops:team": self.team,
            "mlops:environment": self.environment,
            "mlops:managed-by": "pulumi",
        }
