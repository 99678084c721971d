"""The policy pack's rules, as plain functions over resources (type, name, camelCase props).

One module per rule, named after it (cdk-nag's layout): each says what it enforces and why, and
exports its `RULE`. The framework (Res, Finding, the rule types, the levels) is in `core`. This
package assembles the rules in the order the policy pack serves them, and `evaluate` runs them.

The same functions run in two places: `mlops plan` applies them to the offline plan, and
`policypack/__main__.py` wraps them in `pulumi_policy` for `pulumi up --policy-pack policypack`.
Resource rules look at one resource; stack rules see them all (an alarm for every variant).

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from specs.policies import (
    buckets_encrypted,
    eks_clusters_hardened,
    endpoint_configs_encrypted,
    feature_groups_encrypted,
    gpu_nodes_scale_to_zero,
    gpu_nodes_tainted,
    job_roles_not_shared,
    monitoring_jobs_isolated,
    monthly_budget,
    no_public_buckets,
    no_unconditioned_wildcard_writes,
    no_wildcard_iam_actions,
    prod_data_capture,
    prod_deployment_guardrails,
    prod_min_two_instances,
    team_namespaces_default_deny,
    topics_encrypted,
    training_traffic_encrypted,
    variant_alarms,
)
from specs.policies.core import (
    ADVISORY,
    ENV_TAG,
    MANDATORY,
    Finding,
    Res,
    ResourceCheck,
    ResourceLike,
    ResourceRule,
    StackCheck,
    StackRule,
)

__all__ = [
    "ADVISORY", "ENV_TAG", "MANDATORY", "RESOURCE_RULES", "STACK_RULES", "Finding", "Res", "ResourceCheck",
    "ResourceLike", "ResourceRule", "StackCheck", "StackRule", "evaluate",
]

RESOURCE_RULES: tuple[ResourceRule, ...] = (
    feature_groups_encrypted.RULE,
    endpoint_configs_encrypted.RULE,
    topics_encrypted.RULE,
    no_wildcard_iam_actions.RULE,
    no_unconditioned_wildcard_writes.RULE,
    training_traffic_encrypted.RULE,
    monitoring_jobs_isolated.RULE,
    prod_data_capture.RULE,
    prod_min_two_instances.RULE,
    prod_deployment_guardrails.RULE,
    eks_clusters_hardened.RULE,
    gpu_nodes_tainted.RULE,
    gpu_nodes_scale_to_zero.RULE,
)
STACK_RULES: tuple[StackRule, ...] = (
    buckets_encrypted.RULE,
    no_public_buckets.RULE,
    variant_alarms.RULE,
    job_roles_not_shared.RULE,
    team_namespaces_default_deny.RULE,
    monthly_budget.RULE,
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
