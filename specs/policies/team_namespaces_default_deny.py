"""team-namespaces-default-deny: every team namespace has a default-deny NetworkPolicy.

Training pods can write artifacts and register models; without a NetworkPolicy that denies by
default, they reach anything. A namespace labelled with a team (`mlops.dev/team`) needs a
NetworkPolicy in it that selects every pod and allows nothing (specs.k8s.network_policy); the
allowances come from other policies.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from specs.k8s.network_policy import is_default_deny
from specs.k8s.team_namespace import TEAM_LABEL
from specs.policies.core import MANDATORY, ResourceLike, StackRule

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    denied = {
        (r.inputs.get("metadata") or {}).get("namespace")
        for r in resources
        if r.type == NETWORK_POLICY and is_default_deny({"kind": "NetworkPolicy", **r.inputs})
    }
    findings = []
    for r in resources:
        metadata = r.inputs.get("metadata") or {}
        if r.type != NAMESPACE or TEAM_LABEL not in (metadata.get("labels") or {}):
            continue
        name = metadata.get("name")
        if isinstance(name, str) and name not in denied:
            findings.append((r.name, f"team namespace {name} has no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, no rules)"))
    return findings


RULE = StackRule("team-namespaces-default-deny", "Every team namespace denies ingress and egress by default", MANDATORY, check)
