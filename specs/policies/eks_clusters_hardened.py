"""eks-clusters-hardened: EKS clusters envelope-encrypt secrets and keep the API off the open internet.

Kubernetes secrets are only base64 in etcd unless EKS encrypts them with a KMS key, and an API
server reachable from 0.0.0.0/0 is one leaked credential away from the cluster.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """An EKS cluster encrypts `secrets` with a KMS key and, if public, lists narrow CIDRs."""
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


RULE = ResourceRule(
    "eks-clusters-hardened",
    "EKS clusters encrypt secrets with KMS and keep the API endpoint off the open internet",
    MANDATORY,
    check,
)
