"""Every AWS name the framework derives from team, environment and component, with AWS's rules.

Names are public surface: changing a rule here renames, and so replaces, cloud resources. The
config validator calls `derived_names` for a whole stack so that a name AWS would reject is reported
at plan time, never at deploy time. Content-hashed names (models, endpoint configs) are checked at
their full length, suffix included.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

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

    def problem(self) -> str | None:
        """Why AWS would reject this name, or None."""
        pattern, limit = RULES[self.kind]
        if len(self.value) > limit:
            note = f" ({self.note})" if self.note else ""
            return (
                f"derived {self.kind} name {self.value!r}{note} would be {len(self.value)} characters; "
                f"AWS allows {limit}"
            )
        if not pattern.match(self.value):
            return f"derived {self.kind} name {self.value!r} does not match AWS's pattern {pattern.pattern}"
        return None


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

    def eks_cluster(self) -> str:
        return f"{self.prefix}-training"

    def node_group(self, pool: str) -> str:
        return f"{self.prefix}-{pool}"

    def namespace(self) -> str:
        """The team's Kubernetes namespace in this environment (shared clusters host several)."""
        return self.prefix


BUCKET_PURPOSES = ("features", "artifacts", "capture")
ROLE_PURPOSES = ("sagemaker-execution", "feature-store", "model-registry-events")
ALARM_METRICS = ("p99-latency", "5xx-errors", "4xx-rate", "no-traffic", "live-accuracy", "live-log-loss")


def derived_names(
    *,
    namer: Namer,
    endpoints: dict[str, list[str]],
    models: list[str],
    feature_groups: list[str],
    drift_metrics: list[str],
    eks: str | None = None,
) -> list[DerivedName]:
    """Every name a stack derives. `endpoints` maps endpoint key to its variant names; `eks` is the
    EKS cluster mode ("create", "existing") when the team trains on EKS."""
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
    for group in feature_groups:
        add(DerivedName("SageMaker FeatureGroup", namer.feature_group(group), ("feature_store", "feature_groups", group)))
    for model in models:
        source = ("model_registry", "models", model)
        add(DerivedName("SageMaker ModelPackageGroup", namer.model_package_group(model), source))
        add(DerivedName("SageMaker TrainingJob", f"{namer.training_job_prefix(model)}-{TIMESTAMP_PLACEHOLDER}", source, TIMESTAMP_NOTE))
        add(DerivedName("SageMaker Pipeline", namer.pipeline(model), source))
        add(DerivedName("EventBridge rule", namer.rule(f"{model}-approved"), source))
        add(DerivedName("EventBridge rule", namer.rule(f"{model}-retrain"), source))
        add(DerivedName("EventBridge rule", namer.rule(f"{model}-scheduled-retrain"), source))
        add(DerivedName("IAM role", namer.role(f"{model}-retrain"), source))
    for endpoint, variants in endpoints.items():
        source = ("endpoints", endpoint)
        add(DerivedName("SageMaker Endpoint", namer.endpoint(endpoint), source))
        add(DerivedName("SageMaker EndpointConfig", namer.endpoint_config(endpoint, HASH_PLACEHOLDER), source, HASH_NOTE))
        add(DerivedName("SageMaker MonitoringSchedule", namer.monitoring_schedule(endpoint), source))
        for variant in variants:
            add(DerivedName("SageMaker Model", namer.model(endpoint, variant, HASH_PLACEHOLDER), source, HASH_NOTE))
            add(DerivedName("SageMaker ProductionVariant", variant, source))
            for metric in ALARM_METRICS:
                add(DerivedName("CloudWatch alarm", namer.alarm(endpoint, variant, metric), source))
        for metric in drift_metrics:
            add(DerivedName("CloudWatch alarm", namer.alarm(endpoint, "drift", metric), source))
    return names
