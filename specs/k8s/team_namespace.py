"""A team's namespace on a training cluster: the Namespace (Pod Security Admission `restricted`), its
ResourceQuota and LimitRange, the team's PriorityClasses and the IRSA service account training pods
run as, all derived from one `TeamNamespaceSpec`.

`role_arn` is opaque (it may be a Pulumi Output): it is only placed into the dicts, never inspected.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.k8s.common import (
    CPU_QUANTITY,
    QUANTITY,
    Manifest,
    check_integer,
    check_labels,
    check_namespace,
    is_dns_label,
    raise_problems,
)
from specs.k8s.gpu_pool import GPU_RESOURCE

TEAM_LABEL = "mlops.dev/team"
ENVIRONMENT_LABEL = "mlops.dev/environment"

PRIORITIES: dict[str, int] = {"low": 1000, "normal": 10000, "high": 100000}
"""PriorityClass values per level, the same for every team, so a level means the same on a shared cluster
(naming another team's class gains nothing). System classes are 2e9 and above: every run yields to add-ons."""
_PRIORITY_DESCRIPTIONS = {
    "low": "Training runs that wait for free GPUs and never preempt other pods.",
    "normal": "Training runs that may preempt low-priority runs (of any team: preemption is cluster-wide).",
    "high": "Urgent training runs; they may preempt normal and low runs of any team.",
}
PSA_LEVEL = "restricted"
"""Pod Security Admission level enforced on the team's namespace; the training pods satisfy it."""
QUOTA_NAME = "training-quota"
LIMIT_RANGE_NAME = "training-limits"


@dataclass(frozen=True, kw_only=True)
class TeamNamespaceSpec:
    """A team's namespace on a training cluster: its quota, limits, priorities and identity."""

    namespace: str
    """The namespace's name (a DNS label)."""
    team: str
    """The team's slug (label `mlops.dev/team`)."""
    environment: str
    """local, dev, staging or prod (label `mlops.dev/environment`)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object of the namespace and on the namespace itself. @default none."""
    gpu_quota: int
    """`requests.nvidia.com/gpu` of all the namespace's pods together."""
    cpu_quota: str
    """`requests.cpu` of all pods together, a Kubernetes quantity (e.g. "64")."""
    memory_quota: str
    """`requests.memory` and `limits.memory` of all pods together (e.g. "256Gi")."""
    max_pods: int
    """Pods that may exist at once (non-terminal)."""
    service_account: str = "training"
    """The service account training pods run as. @default "training"."""
    role_arn: Any
    """Opaque: the IAM role the service account's pods assume through IRSA."""
    default_cpu: str = "1"
    """LimitRange: CPU request and limit of a container that sets none. @default "1"."""
    default_memory: str = "2Gi"
    """LimitRange: memory request and limit of a container that sets none. @default "2Gi"."""
    max_cpu: str | None = None
    """LimitRange: the most CPU one container may set. @default none (the quota bounds it)."""
    max_memory: str | None = None
    """LimitRange: the most memory one container may set. @default none (the quota bounds it)."""
    max_gpus_per_pod: int = 8
    """LimitRange: the most GPUs one pod may request (the largest AWS GPU instances have 8). @default 8."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_namespace(self.namespace, problems)
        if not is_dns_label(self.service_account, limit=253):
            problems.append(f"service_account={self.service_account!r}: lowercase letters, digits and '-'")
        for name in ("gpu_quota", "max_pods", "max_gpus_per_pod"):
            check_integer(self, name, problems, 0)
        for name in ("cpu_quota", "default_cpu", "max_cpu"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and CPU_QUANTITY.match(value)):
                problems.append(f"{name}={value!r}: a CPU quantity such as '4', '0.5' or '500m'")
        for name in ("memory_quota", "default_memory", "max_memory"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and QUANTITY.match(value)):
                problems.append(f"{name}={value!r}: a memory quantity such as '256Gi' or '512Mi'")
        check_labels("labels", self.common_labels(), problems)
        reserved = sorted(k for k in self.labels if k.startswith("pod-security.kubernetes.io/"))
        if reserved:
            problems.append(f"labels {', '.join(reserved)}: Pod Security Admission labels are set by the framework ({PSA_LEVEL})")
        raise_problems("TeamNamespaceSpec", problems)

    def common_labels(self) -> dict[str, str]:
        return {TEAM_LABEL: self.team, ENVIRONMENT_LABEL: self.environment, **self.labels}

    def metadata(self, name: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": self.common_labels()}


def namespace(spec: TeamNamespaceSpec) -> Manifest:
    """The namespace, with Pod Security Admission enforcing `restricted` (audit and warn too)."""
    psa = {}
    for mode in ("enforce", "audit", "warn"):
        psa[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        psa[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": {**spec.common_labels(), **psa}},
    }


def resource_quota(spec: TeamNamespaceSpec) -> Manifest:
    """What the namespace's pods may request together. Extended resources such as GPUs take only the
    `requests.` prefix in a quota (Kubernetes does not overcommit them, so requests == limits)."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": spec.metadata(QUOTA_NAME),
        "spec": {
            "hard": {
                f"requests.{GPU_RESOURCE}": str(spec.gpu_quota),
                "requests.cpu": spec.cpu_quota,
                "requests.memory": spec.memory_quota,
                # Memory limits are what a node can actually be asked to hold; CPU limits only throttle.
                "limits.memory": spec.memory_quota,
                "pods": str(spec.max_pods),
            }
        },
    }


def limit_range(spec: TeamNamespaceSpec) -> Manifest:
    """Container defaults (so that pods without resources still count against the quota) and maxima.

    GPUs: the LimitRanger admission plugin accepts extended resources, but a `max` makes every
    container without a limit for that resource fail admission ("No limit is specified"). So every
    container defaults to 0 GPUs (the scheduler skips zero requests of extended resources), and the
    GPU maximum is per Pod: the sum over its containers.
    """
    default = {"cpu": spec.default_cpu, "memory": spec.default_memory, GPU_RESOURCE: "0"}
    container: dict[str, Any] = {"type": "Container", "default": dict(default), "defaultRequest": dict(default)}
    container_max = {k: v for k, v in (("cpu", spec.max_cpu), ("memory", spec.max_memory)) if v is not None}
    if container_max:
        container["max"] = container_max
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": spec.metadata(LIMIT_RANGE_NAME),
        "spec": {"limits": [container, {"type": "Pod", "max": {GPU_RESOURCE: str(spec.max_gpus_per_pod)}}]},
    }


def priority_class_name(namespace: str, priority: str) -> str:
    """`<namespace>-training-<priority>`: PriorityClasses are cluster-scoped, so the name carries the namespace."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority {priority!r}; allowed: {', '.join(PRIORITIES)}")
    return f"{namespace}-training-{priority}"


def priority_classes(spec: TeamNamespaceSpec) -> list[Manifest]:
    """Low, normal and high priority for the team's runs; low never preempts, none is the cluster default."""
    classes = []
    for level, value in PRIORITIES.items():
        obj: Manifest = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": priority_class_name(spec.namespace, level), "labels": spec.common_labels()},
            "value": value,
            "globalDefault": False,
            "preemptionPolicy": "Never" if level == "low" else "PreemptLowerPriority",
            "description": f"{_PRIORITY_DESCRIPTIONS[level]} (namespace {spec.namespace})",
        }
        classes.append(obj)
    return classes


def service_account(spec: TeamNamespaceSpec) -> Manifest:
    """The training pods' identity, bound to an IAM role through IRSA.

    No Kubernetes API token is mounted: training never calls the Kubernetes API, and the EKS pod
    identity webhook projects its own STS-audience token (volume `aws-iam-token`) whatever this
    setting says.
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {**spec.metadata(spec.service_account), "annotations": {"eks.amazonaws.com/role-arn": spec.role_arn}},
        "automountServiceAccountToken": False,
    }
