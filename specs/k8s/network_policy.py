"""A team namespace's NetworkPolicies: deny every ingress and egress by default, then allow only what a
training run needs: DNS to kube-dns, any port between the namespace's own pods (torchrun's rendezvous
through the model's headless Service, and NCCL, which picks its ports at run time), and HTTPS (443) to
the AWS endpoints (S3, STS for IRSA, SageMaker's Model Registry and MLflow tracking server, ECR).

AWS endpoints: `aws_cidrs` says where they are. With interface VPC endpoints for every service the
runs use, pass the VPC's CIDR; the default `0.0.0.0/0` is still limited to port 443 and excludes the
instance metadata service (169.254.169.254), so that a pod cannot take the node's credentials.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from specs.k8s.common import Manifest, check_namespace, raise_problems

DEFAULT_DENY_NAME = "default-deny"
ALLOW_TRAINING_NAME = "allow-training-egress"
ANY_IPV4 = "0.0.0.0/0"
METADATA_SERVICE = "169.254.169.254/32"
"""EC2 instance metadata: pods use IRSA, never the node's role."""
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
"""CoreDNS on EKS (and kube-dns elsewhere) carries `k8s-app: kube-dns` in kube-system."""


def _problems(namespace: str, aws_cidrs: Sequence[str]) -> list[str]:
    problems: list[str] = []
    check_namespace(namespace, problems)
    if not aws_cidrs:
        problems.append("aws_cidrs is empty: at least one CIDR where the AWS endpoints are (the VPC's, or 0.0.0.0/0)")
    for cidr in aws_cidrs:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            problems.append(f"aws_cidrs {cidr!r}: an IPv4 CIDR such as '10.0.0.0/16'")
    return problems


def default_deny(*, namespace: str, labels: Mapping[str, str]) -> Manifest:
    """Every pod of the namespace: no ingress, no egress, unless another policy allows it."""
    raise_problems("NetworkPolicy", _problems(namespace, [ANY_IPV4]))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": DEFAULT_DENY_NAME, "namespace": namespace, "labels": dict(labels)},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _aws_peer(cidr: str) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if ipaddress.IPv4Network(METADATA_SERVICE).subnet_of(ipaddress.IPv4Network(cidr)):
        block["except"] = [METADATA_SERVICE]
    return {"ipBlock": block}


def allow_training(*, namespace: str, labels: Mapping[str, str], aws_cidrs: Sequence[str] = (ANY_IPV4,)) -> Manifest:
    """What a training run needs, for every pod of the namespace: DNS, its own namespace's pods (both
    ways) and HTTPS to `aws_cidrs`."""
    raise_problems("NetworkPolicy", _problems(namespace, aws_cidrs))
    same_namespace = [{"podSelector": {}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": ALLOW_TRAINING_NAME, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": same_namespace}],
            "egress": [
                {"to": [dict(KUBE_DNS)], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": same_namespace},
                {"to": [_aws_peer(cidr) for cidr in aws_cidrs], "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def network_policies(*, namespace: str, labels: Mapping[str, str], aws_cidrs: Sequence[str] = (ANY_IPV4,)) -> list[Manifest]:
    """The namespace's default deny and the training allowances, in that order."""
    return [default_deny(namespace=namespace, labels=labels), allow_training(namespace=namespace, labels=labels, aws_cidrs=aws_cidrs)]


def is_default_deny(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is a NetworkPolicy that selects every pod and denies both directions (no rules)."""
    spec = obj.get("spec") or {}
    return (
        obj.get("kind") == "NetworkPolicy"
        and spec.get("podSelector") in ({}, None)
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )
