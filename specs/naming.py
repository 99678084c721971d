"""Every AWS name the framework derives from team, environment and component, with AWS's rules.

Names are public surface: changing a rule here renames, and so replaces, cloud resources. The
config validator calls `derived_names` for a whole stack so that a name AWS would reject is reported
at plan time, never at deploy time. Content-hashed names (models, endpoint configs) are checked at
their full length, suffix included.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: computed without a Pulumi runtime; the layers above build on
specifications, never the reverse).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_contracts import metrics

HASH_LEN = 8

# (pattern, max length) per AWS resource kind, from botocore's service models and the service docs.
SAGEMAKER_ENTITY = (re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"), 63)
RULES: dict[str, tuple[re.Pattern[str], int]] = {
    "SageMaker Endpoint": SAGEMAKER_ENTITY,
    "SageMaker EndpointConfig": SAGEMAKER_ENTITY,
    "SageMaker Model": SAGEMAKER_ENTITY,
    "SageMaker ProductionVariant": SAGEMAKER_ENTITY,
    "SageMaker ModelPackageGroup": SAGEMAKER_ENTITY,
    "SageMaker TrainingJob": SAGEMAKER_ENTITY,
    "SageMaker MonitoringSchedule": SAGEMAKER_ENTITY,
    "SageMaker Pipeline": (re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"), 256),
    "SageMaker FeatureGroup": (re.compile(r"^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$"), 64),
    "S3 bucket": (re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"), 63),
    "IAM role": (re.compile(r"^[\w+=,.@-]{1,64}$"), 64),
    "ECR repository": (re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"), 256),
    "KMS alias": (re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$"), 256),
    "SNS topic": (re.compile(r"^[A-Za-z0-9_-]{1,256}$"), 256),
    "CloudWatch alarm": (re.compile(r"^[^\x00-\x1f]{1,255}$"), 255),
    "CloudWatch dashboard": (re.compile(r"^[A-Za-z0-9_-]{1,255}$"), 255),
    "EventBridge rule": (re.compile(r"^[.\-_A-Za-z0-9]{1,64}$"), 64),
    "Lambda function": (re.compile(r"^[a-zA-Z0-9-_]{1,64}$"), 64),
    "SQS queue": (re.compile(r"^[a-zA-Z0-9_-]{1,80}$"), 80),
    "EKS cluster": (re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]*$"), 100),
    "EKS node group": (re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]*$"), 63),
    "Kubernetes namespace": (re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), 63),
    "Application Auto Scaling policy": (re.compile(r"^\S{1,256}$"), 256),
}

# Placeholders for the suffixes added at deploy time, at their real length.
HASH_PLACEHOLDER = "0" * HASH_LEN
TIMESTAMP_PLACEHOLDER = "20260101-000000"
HASH_NOTE = f"the last {HASH_LEN} characters stand for the content hash"
TIMESTAMP_NOTE = f"the last {len(TIMESTAMP_PLACEHOLDER)} characters stand for the run timestamp"


def content_hash(content: Any) -> str:
    """A short, stable hash of JSON-able content (sorted keys), for content-addressed names."""
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:HASH_LEN]


@dataclass(frozen=True)
class DerivedName:
    """A name the framework will give an AWS resource, and where in the config it comes from."""

    kind: str
    value: str
    source: tuple[str | int, ...]
    """Config path of the component that the name is derived for (the field a user would shorten)."""
    note: str = ""
    """What part of `value` is a placeholder for a suffix added at deploy time (hash, timestamp)."""
    keys: tuple[str, ...] = ()
    """The config keys (endpoint, variant, model... names) that appear in `value`, besides the team."""
    scope: str = ""
    """Where the name must be unique, when that is narrower than its kind: the endpoint of a production
    variant, the type chain of a Pulumi resource (what its URN holds besides the name)."""

    def problem(self) -> str | None:
        """Why AWS would reject this name, or None."""
        if self.kind not in RULES:
            return None  # Pulumi resource names: any string, unique per type chain (see `collisions`)
        pattern, limit = RULES[self.kind]
        if len(self.value) > limit:
            note = f" ({self.note})" if self.note else ""
            return (
                f"derived {self.kind} name {shorten(self.value)}{note} would be {len(self.value)} characters; "
                f"AWS allows {limit}"
            )
        if not pattern.match(self.value):
            return f"derived {self.kind} name {shorten(self.value)} does not match AWS's pattern {pattern.pattern}"
        return None

    def fits_with_short_keys(self) -> bool:
        """Whether the name would be short enough with every key cut to one character: if so, the keys
        make it too long; if not, the team name alone does."""
        limit = RULES[self.kind][1] if self.kind in RULES else None
        return limit is not None and len(self.value) - sum(len(k) - 1 for k in self.keys) <= limit


def shorten(value: str, limit: int = 100) -> str:
    """repr() of a name, cut short for messages (a key can be thousands of characters long)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


@dataclass(frozen=True)
class Namer:
    """Derives AWS names for one team in one environment."""

    team: str
    environment: str
    account_id: str

    @property
    def prefix(self) -> str:
        return f"{self.team}-{self.environment}"

    def bucket(self, purpose: str) -> str:
        """S3 bucket names are global: the account id keeps them unique across organisations."""
        return f"{self.prefix}-{purpose}-{self.account_id}"

    def ground_truth_uri(self, model: str) -> str:
        """The default ground-truth location of `model` (ModelConfig.ground_truth_uri)."""
        return f"s3://{self.bucket('features')}/ground-truth/{model}/"

    def endpoint(self, endpoint: str) -> str:
        return f"{self.prefix}-{endpoint}"

    def endpoint_config(self, endpoint: str, digest: str) -> str:
        return f"{self.prefix}-{endpoint}-{digest}"

    def model(self, endpoint: str, variant: str, digest: str) -> str:
        return f"{self.prefix}-{endpoint}-{variant}-{digest}"

    def model_package_group(self, model: str) -> str:
        return f"{self.prefix}-{model}"

    def model_package_group_arn(self, model: str, *, region: str) -> str:
        return f"arn:aws:sagemaker:{region}:{self.account_id}:model-package-group/{self.model_package_group(model)}"

    def feature_group(self, group: str) -> str:
        return f"{self.prefix}-{group}"

    def feature_group_arn(self, group: str, *, region: str) -> str:
        return f"arn:aws:sagemaker:{region}:{self.account_id}:feature-group/{self.feature_group(group)}"

    def training_job_prefix(self, model: str) -> str:
        return f"{self.prefix}-{model}"

    def pipeline(self, model: str) -> str:
        return f"{self.prefix}-{model}-train"

    def monitoring_schedule(self, endpoint: str) -> str:
        return f"{self.prefix}-{endpoint}-drift"

    def quality_schedule(self, endpoint: str) -> str:
        """The endpoint's live-quality MonitoringSchedule (the drift one is `monitoring_schedule`)."""
        return f"{self.prefix}-{endpoint}-quality"

    def role(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    def ecr_repository(self, image: str) -> str:
        return f"{self.team}/{self.environment}/{image}"

    def kms_alias(self) -> str:
        return f"alias/{self.prefix}-mlops"

    def topic(self) -> str:
        return f"{self.prefix}-alerts"

    def alarm(self, endpoint: str, variant: str, metric: str) -> str:
        return f"{self.prefix}-{endpoint}-{variant}-{metric}"

    def dashboard(self) -> str:
        return f"{self.prefix}-mlops"

    def rule(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    def function(self, purpose: str) -> str:
        """A Lambda function (64 characters at most)."""
        return f"{self.prefix}-{purpose}"

    def queue(self, purpose: str) -> str:
        """An SQS queue (80 characters at most)."""
        return f"{self.prefix}-{purpose}"

    def eks_cluster(self) -> str:
        return f"{self.prefix}-training"

    def node_group(self, pool: str) -> str:
        return f"{self.prefix}-{pool}"

    def namespace(self) -> str:
        """The team's Kubernetes namespace in this environment (shared clusters host several)."""
        return self.prefix


BUCKET_PURPOSES = ("features", "artifacts", "capture")
ROLE_PURPOSES = ("sagemaker-training", "sagemaker-hosting", "sagemaker-monitoring", "sagemaker-pipeline", "feature-store", "model-registry-events")
ALARM_METRICS = ("p99-latency", "5xx-errors", "4xx-rate", "no-traffic",
                 *(f"live-{m.replace('_', '-')}" for m in metrics.LIVE_METRIC_SUFFIXES))
"""Suffixes of the per-variant alarms (specs.alarms): health alarms, then one live-quality alarm per gate."""


@dataclass(frozen=True)
class EndpointKeys:
    """What of one endpoint's config shapes its derived names."""

    variants: Mapping[str, str]
    """Variant name -> the traffic section that holds it ("variants", "production" or "shadow")."""
    autoscaled: bool = False
    """Production variants get scaling targets and policies."""
    drift_monitor: bool = True
    """Data capture is on, so the endpoint gets a DriftMonitor."""


@dataclass(frozen=True)
class Collision:
    """Two config paths from which the framework derives the same name."""

    first: tuple[str | int, ...]
    second: tuple[str | int, ...]
    names: tuple[DerivedName, ...] = field(default_factory=tuple)
    """The coinciding names, one per kind (and scope)."""


def collisions(names: list[DerivedName]) -> list[Collision]:
    """Pairs of config paths whose derived names coincide within a kind and scope (AWS would refuse the
    second resource; Pulumi refuses a duplicate URN), one Collision per pair, in the order found."""
    owner: dict[tuple[str, str, str], DerivedName] = {}
    pairs: dict[frozenset[tuple[str | int, ...]], tuple[tuple[str | int, ...], tuple[str | int, ...], list[DerivedName]]] = {}
    for name in names:
        first = owner.setdefault((name.kind, name.scope, name.value), name)
        if first.source != name.source:
            pair = pairs.setdefault(frozenset((first.source, name.source)), (first.source, name.source, []))
            pair[2].append(name)
    return [Collision(first=a, second=b, names=tuple(found)) for a, b, found in pairs.values()]


def derived_names(
    *,
    namer: Namer,
    endpoints: Mapping[str, EndpointKeys | list[str]],
    models: list[str],
    feature_groups: list[str],
    drift_metrics: list[str],
    eks: str | None = None,
) -> list[DerivedName]:
    """Every name a stack derives: AWS names, alarm names, metric dimensions and the Pulumi resource
    names that carry config keys. `endpoints` maps endpoint key to its EndpointKeys (a plain list of
    variant names stands for variants of a single or A/B endpoint); `eks` is the EKS cluster mode
    ("create", "existing") when the team trains on EKS."""
    names = _team_names(namer, eks)
    add = names.append
    stack = namer.prefix  # Pulumi names its components after the stack, `<team>-<env>`
    for group in feature_groups:
        source = ("feature_store", "feature_groups", group)
        add(DerivedName("SageMaker FeatureGroup", namer.feature_group(group), source, keys=(group,)))
        add(_pulumi(f"{stack}-features-{group}", source, (group,), "mlops:feature_store:FeatureStore", "aws:sagemaker/featureGroup:FeatureGroup"))
    for model in models:
        names.extend(_model_names(namer, model))
    for endpoint, spec in endpoints.items():
        names.extend(_endpoint_names(namer, endpoint, spec if isinstance(spec, EndpointKeys) else EndpointKeys({v: "variants" for v in spec}), drift_metrics))
    return names


STACK_TYPE = "pulumi:pulumi:Stack"
"""The parent type of the components the program declares at the top (first in their URNs' type chain)."""


def _pulumi(name: str, source: tuple[str | int, ...], keys: tuple[str, ...], *types: str) -> DerivedName:
    """A Pulumi resource name; its scope is the URN's type chain (`parent$child`)."""
    return DerivedName("Pulumi resource", name, source, keys=keys, scope="$".join(types))


def _team_names(namer: Namer, eks: str | None) -> list[DerivedName]:
    names: list[DerivedName] = []
    add = names.append
    for purpose in BUCKET_PURPOSES:
        add(DerivedName("S3 bucket", namer.bucket(purpose), ("team",)))
    for purpose in ROLE_PURPOSES:
        add(DerivedName("IAM role", namer.role(purpose), ("team",)))
    for image in ("training", "serving"):
        add(DerivedName("ECR repository", namer.ecr_repository(image), ("team",)))
    add(DerivedName("KMS alias", namer.kms_alias(), ("team",)))
    add(DerivedName("SNS topic", namer.topic(), ("team",)))
    add(DerivedName("CloudWatch dashboard", namer.dashboard(), ("team",)))
    if eks is not None:
        source = ("training", "eks")
        add(DerivedName("Kubernetes namespace", namer.namespace(), ("team",)))
        add(DerivedName("IAM role", namer.role("training-pods"), source))
        if eks == "create":
            add(DerivedName("EKS cluster", namer.eks_cluster(), source))
            for pool in ("system", "gpu"):
                add(DerivedName("EKS node group", namer.node_group(pool), source))
            for purpose in ("eks-cluster", "eks-nodes", "cluster-autoscaler"):
                add(DerivedName("IAM role", namer.role(purpose), source))
    return names


def _model_names(namer: Namer, model: str) -> list[DerivedName]:
    source = ("model_registry", "models", model)
    keys = (model,)
    return [
        DerivedName("SageMaker ModelPackageGroup", namer.model_package_group(model), source, keys=keys),
        DerivedName("SageMaker TrainingJob", f"{namer.training_job_prefix(model)}-{TIMESTAMP_PLACEHOLDER}", source, TIMESTAMP_NOTE, keys=keys),
        DerivedName("SageMaker Pipeline", namer.pipeline(model), source, keys=keys),
        DerivedName("EventBridge rule", namer.rule(f"{model}-approved"), source, keys=keys),
        DerivedName("EventBridge rule", namer.rule(f"{model}-retrain"), source, keys=keys),
        DerivedName("EventBridge rule", namer.rule(f"{model}-scheduled-retrain"), source, keys=keys),
        DerivedName("IAM role", namer.role(f"{model}-retrain"), source, keys=keys),
        DerivedName("IAM role", namer.role(f"{model}-retrain-schedule"), source, keys=keys),
        DerivedName("Lambda function", namer.function(f"{model}-retrain-starter"), source, keys=keys),
        DerivedName("SQS queue", namer.queue(f"{model}-retrain-failed"), source, keys=keys),
        _pulumi(f"{namer.prefix}-registry-{model}", source, keys, "mlops:model_registry:ModelRegistry",
                "aws:sagemaker/modelPackageGroup:ModelPackageGroup"),
    ]


def _endpoint_names(namer: Namer, endpoint: str, spec: EndpointKeys, drift_metrics: list[str]) -> list[DerivedName]:
    source: tuple[str | int, ...] = ("endpoints", endpoint)
    keys = (endpoint,)
    component = "mlops:endpoint:Endpoint"
    names = [
        DerivedName("SageMaker Endpoint", namer.endpoint(endpoint), source, keys=keys),
        DerivedName("SageMaker EndpointConfig", namer.endpoint_config(endpoint, HASH_PLACEHOLDER), source, HASH_NOTE, keys=keys),
        DerivedName("SageMaker MonitoringSchedule", namer.monitoring_schedule(endpoint), source, keys=keys),
        DerivedName("SageMaker MonitoringSchedule", namer.quality_schedule(endpoint), source, keys=keys),
        _pulumi(f"{namer.prefix}-{endpoint}", source, keys, STACK_TYPE, component),
    ]
    add = names.append
    if spec.drift_monitor:
        add(_pulumi(f"{namer.prefix}-{endpoint}-drift", source, keys, STACK_TYPE, "mlops:drift_monitor:DriftMonitor"))
        add(_pulumi(f"{namer.prefix}-{endpoint}-quality", source, keys, STACK_TYPE, "mlops:quality_monitor:QualityMonitor"))
    for metric in drift_metrics:
        add(DerivedName("CloudWatch alarm", namer.alarm(endpoint, "drift", metric), source, keys=keys))
    for variant, section in spec.variants.items():
        vsource = (*source, "traffic", section, variant)
        vkeys = (endpoint, variant)
        add(DerivedName("SageMaker Model", namer.model(endpoint, variant, HASH_PLACEHOLDER), vsource, HASH_NOTE, keys=vkeys))
        add(DerivedName("SageMaker ProductionVariant", variant, vsource, keys=(variant,), scope=namer.endpoint(endpoint)))
        add(DerivedName("CloudWatch metric dimensions", f"EndpointName={namer.endpoint(endpoint)},VariantName={variant}", vsource, keys=vkeys))
        for metric in ALARM_METRICS:
            add(DerivedName("CloudWatch alarm", namer.alarm(endpoint, variant, metric), vsource, keys=vkeys))
        pulumi_name = f"{namer.prefix}-{endpoint}-{variant}"
        add(_pulumi(pulumi_name, vsource, vkeys, component, "aws:sagemaker/model:Model"))
        if spec.autoscaled and section != "shadow":
            add(_pulumi(f"{pulumi_name}-scaling", vsource, vkeys, component, "aws:appautoscaling/target:Target"))
            add(_pulumi(f"{pulumi_name}-invocations", vsource, vkeys, component, "aws:appautoscaling/policy:Policy"))
    return names
