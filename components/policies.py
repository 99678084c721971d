"""The policy pack's rules, as plain functions over resources (type, name, camelCase props).

The same functions run in two places: `mlops plan` applies them to the offline plan, and
`policypack/__main__.py` wraps them in `pulumi_policy` for `pulumi up --policy-pack policypack`.
Resource rules look at one resource; stack rules see them all (an alarm for every variant).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from specs import iam

MANDATORY = "mandatory"
ADVISORY = "advisory"
ENV_TAG = "mlops:environment"


class ResourceLike(Protocol):
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Res:
    """A resource as the rules see it."""

    type: str
    name: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    resource: str
    message: str

    @property
    def mandatory(self) -> bool:
        return self.level == MANDATORY

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "level": self.level, "resource": self.resource, "message": self.message}


ResourceCheck = Callable[[str, dict[str, Any]], list[str]]
StackCheck = Callable[[list[ResourceLike]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    level: str
    check: ResourceCheck


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    level: str
    check: StackCheck


def _env(props: dict[str, Any]) -> str | None:
    return (props.get("tags") or {}).get(ENV_TAG)


# ---- resource rules ------------------------------------------------------------------------

def feature_group_encrypted(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:sagemaker/featureGroup:FeatureGroup":
        return []
    problems = []
    online = props.get("onlineStoreConfig") or {}
    if online.get("enableOnlineStore") and not (online.get("securityConfig") or {}).get("kmsKeyId"):
        problems.append("online store is not encrypted with a KMS key (onlineStoreConfig.securityConfig.kmsKeyId)")
    offline = props.get("offlineStoreConfig")
    if offline and not (offline.get("s3StorageConfig") or {}).get("kmsKeyId"):
        problems.append("offline store is not encrypted with a KMS key (offlineStoreConfig.s3StorageConfig.kmsKeyId)")
    return problems


def endpoint_config_encrypted(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        return []
    problems = []
    if not props.get("kmsKeyArn"):
        problems.append("instance storage is not encrypted with a KMS key (kmsKeyArn)")
    capture = props.get("dataCaptureConfig") or {}
    if capture.get("enableCapture") and not capture.get("kmsKeyId"):
        problems.append("captured requests are not encrypted with a KMS key (dataCaptureConfig.kmsKeyId)")
    return problems


def topic_encrypted(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ == "aws:sns/topic:Topic" and not props.get("kmsMasterKeyId"):
        return ["topic is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


IAM_POLICY_TYPES = {"aws:iam/rolePolicy:RolePolicy": "policy", "aws:iam/policy:Policy": "policy"}


BROAD_MANAGED_POLICY_SUFFIXES = ("FullAccess", "/AdministratorAccess", "/PowerUserAccess")


def _broad_managed(arn: Any) -> bool:
    return isinstance(arn, str) and arn.endswith(BROAD_MANAGED_POLICY_SUFFIXES)


def no_wildcard_iam_actions(type_: str, props: dict[str, Any]) -> list[str]:
    docs, problems = [], []
    if type_ in IAM_POLICY_TYPES:
        docs.append(props.get(IAM_POLICY_TYPES[type_]))
    elif type_ == "aws:iam/role:Role":
        docs.extend(p.get("policy") for p in props.get("inlinePolicies") or [])
        problems += [
            f"attaches the managed policy {arn}; broad managed policies are not least privilege"
            for arn in props.get("managedPolicyArns") or [] if _broad_managed(arn)
        ]
    elif type_ == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and _broad_managed(props.get("policyArn")):
        problems.append(f"attaches the managed policy {props['policyArn']}; broad managed policies are not least privilege")
    for doc in docs:
        parsed = _parse(doc)
        if parsed is None:
            continue
        wild = iam.wildcard_actions(parsed)
        if wild:
            problems.append(f"allows wildcard action(s) {', '.join(sorted(set(wild)))}; name each action")
    return problems


def _parse(doc: Any) -> dict[str, Any] | None:
    import json

    if isinstance(doc, dict):
        return doc
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except ValueError:
            return None
    return None  # unknown during preview


def prod_data_capture(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration" or _env(props) != "prod":
        return []
    if not (props.get("dataCaptureConfig") or {}).get("enableCapture"):
        return ["prod endpoint does not capture requests and responses (dataCaptureConfig.enableCapture)"]
    return []


def prod_capacity(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration" or _env(props) != "prod":
        return []
    return [
        f"production variant {v.get('variantName')} has {int(v.get('initialInstanceCount') or 0)} instance(s); prod needs at least 2"
        for v in props.get("productionVariants") or []
        if (v.get("initialInstanceCount") or 0) < 2
    ]


def prod_guardrails(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:sagemaker/endpoint:Endpoint" or _env(props) != "prod":
        return []
    deployment = props.get("deploymentConfig") or {}
    problems = []
    if not deployment.get("blueGreenUpdatePolicy") and not deployment.get("rollingUpdatePolicy"):
        problems.append("prod endpoint has no deployment guardrails (deploymentConfig.blueGreenUpdatePolicy)")
    if not (deployment.get("autoRollbackConfiguration") or {}).get("alarms"):
        problems.append("prod endpoint has no auto-rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)")
    return problems


def eks_cluster_hardened(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != "aws:eks/cluster:Cluster":
        return []
    problems = []
    encryption = props.get("encryptionConfig") or {}
    if "secrets" not in (encryption.get("resources") or []) or not (encryption.get("provider") or {}).get("keyArn"):
        problems.append("Kubernetes secrets are not envelope-encrypted with a KMS key (encryptionConfig)")
    vpc = props.get("vpcConfig") or {}
    if vpc.get("endpointPublicAccess", True):
        cidrs = vpc.get("publicAccessCidrs") or []
        if not cidrs or "0.0.0.0/0" in cidrs:
            problems.append("the API server endpoint is open to the internet (endpointPublicAccess without narrow publicAccessCidrs)")
    return problems


def _gpu_node_group(type_: str, props: dict[str, Any]) -> bool:
    return type_ == "aws:eks/nodeGroup:NodeGroup" and "NVIDIA" in str(props.get("amiType") or "")


def gpu_nodes_tainted(type_: str, props: dict[str, Any]) -> list[str]:
    if not _gpu_node_group(type_, props):
        return []
    taints = props.get("taints") or []
    if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE" for t in taints):
        return ["GPU node group has no nvidia.com/gpu NO_SCHEDULE taint: CPU pods would land on GPU nodes and keep them from scaling in"]
    return []


def gpu_nodes_scale_to_zero(type_: str, props: dict[str, Any]) -> list[str]:
    if not _gpu_node_group(type_, props):
        return []
    minimum = (props.get("scalingConfig") or {}).get("minSize")
    if minimum:
        return [f"GPU node group keeps {minimum} node(s) running while no training runs (scalingConfig.minSize > 0)"]
    return []


# ---- stack rules ---------------------------------------------------------------------------

def _by_type(resources: Iterable[ResourceLike], type_: str) -> list[ResourceLike]:
    return [r for r in resources if r.type == type_]


def buckets_encrypted(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    encrypted = set()
    for r in _by_type(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        rules = r.inputs.get("rules") or []
        if any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") for rule in rules):
            encrypted.add(r.inputs.get("bucket"))
    return [
        (b.name, "bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)")
        for b in _by_type(resources, "aws:s3/bucket:Bucket")
        if b.inputs.get("bucket") not in encrypted
    ]


def buckets_not_public(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    blocked = {
        r.inputs.get("bucket")
        for r in _by_type(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if all(r.inputs.get(f) is True for f in flags)
    }
    findings = [
        (b.name, "bucket has no public access block with all four settings true")
        for b in _by_type(resources, "aws:s3/bucket:Bucket")
        if b.inputs.get("bucket") not in blocked
    ]
    for b in _by_type(resources, "aws:s3/bucket:Bucket"):
        if b.inputs.get("acl") in ("public-read", "public-read-write"):
            findings.append((b.name, f"bucket ACL is {b.inputs['acl']}"))
    return findings


def variant_alarms(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    """Every production variant of every endpoint has a latency and an error alarm."""
    watched: dict[tuple[str, str], set[str]] = {}
    for alarm in _by_type(resources, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        dims = alarm.inputs.get("dimensions") or {}
        metric = alarm.inputs.get("metricName")
        if metric and "EndpointName" in dims and "VariantName" in dims:
            watched.setdefault((dims["EndpointName"], dims["VariantName"]), set()).add(metric)
    configs = {c.inputs.get("name"): c for c in _by_type(resources, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")}
    findings = []
    for endpoint in _by_type(resources, "aws:sagemaker/endpoint:Endpoint"):
        config = configs.get(endpoint.inputs.get("endpointConfigName"))
        if config is None:
            continue
        for variant in config.inputs.get("productionVariants") or []:
            have = watched.get((endpoint.inputs.get("name"), variant.get("variantName")), set())
            missing = [m for m in ("ModelLatency", "Invocation5XXErrors") if m not in have]
            if missing:
                findings.append((endpoint.name, f"production variant {variant.get('variantName')} has no alarm on {', '.join(missing)}"))
    return findings


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule("feature-groups-encrypted", "Feature Store online and offline stores use KMS", MANDATORY, feature_group_encrypted),
    ResourceRule("endpoint-configs-encrypted", "Endpoint storage and data capture use KMS", MANDATORY, endpoint_config_encrypted),
    ResourceRule("topics-encrypted", "SNS topics use KMS", MANDATORY, topic_encrypted),
    ResourceRule("no-wildcard-iam-actions", "IAM policies name their actions; no FullAccess managed policies", MANDATORY, no_wildcard_iam_actions),
    ResourceRule("prod-data-capture", "Prod endpoints capture requests and responses", MANDATORY, prod_data_capture),
    ResourceRule("prod-min-two-instances", "Prod production variants run at least two instances", MANDATORY, prod_capacity),
    ResourceRule("prod-deployment-guardrails", "Prod endpoints deploy blue/green with auto-rollback alarms", MANDATORY, prod_guardrails),
    ResourceRule("eks-clusters-hardened", "EKS clusters encrypt secrets with KMS and keep the API endpoint off the open internet", MANDATORY, eks_cluster_hardened),
    ResourceRule("gpu-nodes-tainted", "GPU node groups carry the nvidia.com/gpu NoSchedule taint", MANDATORY, gpu_nodes_tainted),
    ResourceRule("gpu-nodes-scale-to-zero", "GPU node groups scale to zero when idle", ADVISORY, gpu_nodes_scale_to_zero),
)
STACK_RULES: tuple[StackRule, ...] = (
    StackRule("buckets-encrypted", "S3 buckets default to SSE-KMS", MANDATORY, buckets_encrypted),
    StackRule("no-public-buckets", "S3 buckets block all public access", MANDATORY, buckets_not_public),
    StackRule("variant-alarms", "Every production variant has latency and 5XX alarms", MANDATORY, variant_alarms),
)


def evaluate(resources: list[ResourceLike], *, environment: str | None = None) -> list[Finding]:
    """Run every rule over a plan. `environment` is informational; rules read the resources' tags."""
    findings = []
    for resource in resources:
        for rule in RESOURCE_RULES:
            for message in rule.check(resource.type, resource.inputs):
                findings.append(Finding(rule.name, rule.level, resource.name, message))
    for stack_rule in STACK_RULES:
        for name, message in stack_rule.check(resources):
            findings.append(Finding(stack_rule.name, stack_rule.level, name, message))
    return findings
