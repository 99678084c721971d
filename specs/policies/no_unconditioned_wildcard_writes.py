"""no-unconditioned-wildcard-writes: no IAM Allow grants a write action on Resource `*` without a Condition.

Some actions exist only on `*` (ENI creation, PutMetricData): they must carry a condition that
narrows them (the stack's VPC, a metric namespace). Reads (Get*, Describe*, List*) on `*` stay allowed:
AWS offers no resource scoping for most of them and they change nothing.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs import iam
from specs.policies.core import MANDATORY, ResourceRule
from specs.policies.no_wildcard_iam_actions import IAM_POLICY_TYPES, parse_document


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """Unconditioned write actions on `*` in a role's or a policy's documents."""
    if type_ in IAM_POLICY_TYPES:
        docs = [props.get(IAM_POLICY_TYPES[type_])]
    elif type_ == "aws:iam/role:Role":
        docs = [p.get("policy") for p in props.get("inlinePolicies") or []]
    else:
        return []
    problems = []
    for doc in docs:
        parsed = parse_document(doc)
        found = iam.unconditioned_wildcard_writes(parsed) if parsed is not None else []
        if found:
            problems.append(f"allows write action(s) on Resource '*' without a Condition: {', '.join(found)}; "
                            "name the resources or add a condition (ec2:Vpc, cloudwatch:namespace...)")
    return problems


RULE = ResourceRule("no-unconditioned-wildcard-writes", "No IAM write action on Resource * without a Condition", MANDATORY, check)
