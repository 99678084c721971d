"""The cluster autoscaler, a cluster add-on of the clusters the stack creates: the objects of upstream's
cluster-autoscaler-autodiscover.yaml (service account, RBAC, Deployment), the pinned image per
Kubernetes minor version, and the IAM policy of its IRSA role. It scales the GPU pool from and to zero.

`role_arn` is opaque (it may be a Pulumi Output): it is only placed into the service account's
annotation, never inspected.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

import re
from typing import Any

from specs import iam
from specs.k8s.common import Manifest

CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_TAGS: dict[str, str] = {
    "1.28": "v1.28.6",
    "1.29": "v1.29.4",
    "1.30": "v1.30.2",
    "1.31": "v1.31.1",
    "1.32": "v1.32.7",
    "1.33": "v1.33.6",
    "1.34": "v1.34.5",
    "1.35": "v1.35.2",
    "1.36": "v1.36.1",
}
"""Pinned cluster-autoscaler releases per Kubernetes minor version (the autoscaler's minor must match the cluster's)."""
_CA_LABELS = {"k8s-addon": "cluster-autoscaler.addons.k8s.io", "k8s-app": "cluster-autoscaler"}


def _minor(kubernetes_version: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", kubernetes_version)
    if not match:
        raise ValueError(f"kubernetes_version {kubernetes_version!r}; allowed: '<major>.<minor>' such as '1.33'")
    return f"{match[1]}.{match[2]}"


def cluster_autoscaler_image(kubernetes_version: str, image_tag: str | None = None, *, digest: str | None = None) -> str:
    """The autoscaler image for a cluster version: the pinned tag of its minor, or `image_tag` (same minor),
    and `@<digest>` when the stack pins the digest that tag resolved to (a moved tag then cannot change it)."""
    minor = _minor(kubernetes_version)
    if image_tag is None:
        if minor not in CLUSTER_AUTOSCALER_TAGS:
            raise ValueError(
                f"no pinned cluster-autoscaler for Kubernetes {minor}; pinned: {', '.join(CLUSTER_AUTOSCALER_TAGS)} "
                f"(or pass image_tag='v{minor}.<patch>')"
            )
        image_tag = CLUSTER_AUTOSCALER_TAGS[minor]
    elif not re.fullmatch(rf"v{re.escape(minor)}\.\d+", image_tag):
        raise ValueError(f"cluster-autoscaler image_tag {image_tag!r} does not match Kubernetes {minor}; allowed: 'v{minor}.<patch>'")
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError(f"cluster-autoscaler digest {digest!r}; allowed: sha256: and 64 lowercase hex digits")
    return f"{CLUSTER_AUTOSCALER_IMAGE}:{image_tag}" + (f"@{digest}" if digest else "")


def cluster_autoscaler_policy(cluster_name: str) -> iam.Document:
    """The autoscaler's IAM policy (its IRSA role): it reads every group (AWS grants Describe* on
    "*" only) and resizes only the Auto Scaling groups tagged as owned by this cluster."""
    return iam.document(
        iam.allow("DescribeScalingGroups", [
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
        ], ["*"]),
        iam.allow("DescribeClusterNodeGroups", ["eks:DescribeNodegroup"], [f"arn:aws:eks:*:*:nodegroup/{cluster_name}/*/*"]),
        iam.allow(
            "ScaleClusterNodeGroups",
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ["*"],
            {"StringEquals": {
                f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
            }},
        ),
    )


def _cluster_role_rules() -> list[dict[str, Any]]:
    """Upstream's ClusterRole rules: read the cluster's workloads, cordon and drain nodes, hold its lease."""
    read = ["watch", "list", "get"]
    return [
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": ["cluster-autoscaler"], "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims", "persistentvolumes"], "verbs": read},
        {"apiGroups": ["extensions"], "resources": ["replicasets", "daemonsets"], "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["watch", "list"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets", "replicasets", "daemonsets"], "verbs": read},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"], "verbs": read},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resourceNames": ["cluster-autoscaler"], "resources": ["leases"], "verbs": ["get", "update"]},
    ]


def _role_rules() -> list[dict[str, Any]]:
    """Upstream's Role rules in kube-system: its status and priority-expander ConfigMaps."""
    return [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"], "verbs": ["delete", "get", "update", "watch"]},
    ]


def _ca_meta(kind_namespaced: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cluster-autoscaler", "labels": dict(_CA_LABELS)}
    if kind_namespaced:
        meta["namespace"] = "kube-system"
    return meta


def _rbac(role_arn: Any) -> list[Manifest]:
    """The service account bound to `role_arn` (IRSA), its ClusterRole and Role, and their bindings."""
    subject = [{"kind": "ServiceAccount", "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT, "namespace": "kube-system"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**_ca_meta(True), "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        },
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _ca_meta(False), "rules": _cluster_role_rules()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _ca_meta(True), "rules": _role_rules()},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _ca_meta(False),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-autoscaler"},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _ca_meta(True),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cluster-autoscaler"},
            "subjects": subject,
        },
    ]


def _command(cluster_name: str) -> list[str]:
    """The autoscaler's command line: AWS, discovering the Auto Scaling groups tagged for this cluster."""
    return [
        "./cluster-autoscaler",
        "--v=4",
        "--stderrthreshold=info",
        "--cloud-provider=aws",
        f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{cluster_name}",
        "--balance-similar-node-groups",
        "--expander=least-waste",
        "--skip-nodes-with-local-storage=false",
        "--skip-nodes-with-system-pods=false",
        # GPU nodes are expensive: remove an idle one after 10 minutes, but not right after adding it.
        "--scale-down-unneeded-time=10m",
        "--scale-down-delay-after-add=10m",
    ]


HEALTH_PORT = 8085
"""The autoscaler's HTTP address (`--address`, default :8085): /health-check and /metrics."""
CHECKOV_SKIPS = {
    "CKV_K8S_38": "the autoscaler reads nodes and pods and writes its status through the Kubernetes API, so it needs its token",
    "CKV_K8S_43": "one pinned release tag per Kubernetes minor (CLUSTER_AUTOSCALER_TAGS); registry.k8s.io release tags are not moved",
}
"""Checks that do not fit the autoscaler, each with its reason (checkov reads them from the object)."""


def _container(*, image: str, cluster_name: str, region: str) -> dict[str, Any]:
    return {
        "name": "cluster-autoscaler",
        "image": image,
        "imagePullPolicy": "Always",
        "command": _command(cluster_name),
        "ports": [{"name": "metrics", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health-check", "port": HEALTH_PORT}, "initialDelaySeconds": 60, "periodSeconds": 30},
        "readinessProbe": {"httpGet": {"path": "/health-check", "port": HEALTH_PORT}, "periodSeconds": 30},
        "env": [{"name": "AWS_REGION", "value": region}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "600Mi"},
            "limits": {"cpu": "100m", "memory": "600Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }


def _deployment(*, image: str, cluster_name: str, region: str) -> Manifest:
    """One replica in kube-system, a critical add-on, running as nobody."""
    app = {"app": "cluster-autoscaler"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "cluster-autoscaler", "namespace": "kube-system", "labels": dict(app),
            "annotations": {f"checkov.io/skip{i}": f"{c}={r}" for i, (c, r) in enumerate(sorted(CHECKOV_SKIPS.items()), start=1)},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(app)},
            "template": {
                "metadata": {
                    "labels": dict(app),
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8085"},
                },
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "fsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "serviceAccountName": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
                    "containers": [_container(image=image, cluster_name=cluster_name, region=region)],
                },
            },
        },
    }


def cluster_autoscaler(
    *, cluster_name: str, region: str, role_arn: Any, kubernetes_version: str, image_tag: str | None = None,
    image_digest: str | None = None,
) -> list[Manifest]:
    """The objects of upstream's cluster-autoscaler-autodiscover.yaml: a service account bound to
    `role_arn` (opaque, IRSA), RBAC and the Deployment, discovering this cluster's tagged groups; the
    image by digest when `image_digest` is given (`Images.cluster_autoscaler_digest`)."""
    image = cluster_autoscaler_image(kubernetes_version, image_tag, digest=image_digest)
    return [*_rbac(role_arn), _deployment(image=image, cluster_name=cluster_name, region=region)]
