"""no-wildcard-iam-actions: IAM policies name each action; no broad managed policies.

Least privilege: an Allow with `*`, `service:*`, a wildcard pattern or NotAction grants actions no
one reviewed, and AWS's FullAccess / AdministratorAccess / PowerUserAccess managed policies do the
same wholesale. Checked on inline role policies, standalone policies and attachments.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

import json
from typing import Any

from specs import iam
from specs.policies.core import MANDATORY, ResourceRule

IAM_POLICY_TYPES = {"aws:iam/rolePolicy:RolePolicy": "policy", "aws:iam/policy:Policy": "policy"}
"""Policy resource type -> the prop holding its JSON document."""
BROAD_MANAGED_POLICY_SUFFIXES = ("FullAccess", "/AdministratorAccess", "/PowerUserAccess")


def _broad_managed(arn: Any) -> bool:
    return isinstance(arn, str) and arn.endswith(BROAD_MANAGED_POLICY_SUFFIXES)


def parse_document(doc: Any) -> dict[str, Any] | None:
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except ValueError:
            return None
    return None  # unknown during preview


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """Wildcard actions in a policy document, and broad managed policies attached to a role."""
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
        parsed = parse_document(doc)
        if parsed is None:
            continue
        wild = iam.wildcard_actions(parsed)
        if wild:
            problems.append(f"allows wildcard action(s) {', '.join(sorted(set(wild)))}; name each action")
    return problems


RULE = ResourceRule("no-wildcard-iam-actions", "IAM policies name their actions; no FullAccess managed policies", MANDATORY, check)
