"""prod-deployment-guardrails: prod endpoints deploy blue/green and roll back on alarms.

Without deployment guardrails an update replaces every instance at once, and without auto-rollback
alarms a model that fails on live traffic stays in place until someone notices.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule, environment


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """A prod endpoint has a blue/green (or rolling) update policy and auto-rollback alarms."""
    if type_ != "aws:sagemaker/endpoint:Endpoint" or environment(props) != "prod":
        return []
    deployment = props.get("deploymentConfig") or {}
    problems = []
    if not deployment.get("blueGreenUpdatePolicy") and not deployment.get("rollingUpdatePolicy"):
        problems.append("prod endpoint has no deployment guardrails (deploymentConfig.blueGreenUpdatePolicy)")
    if not (deployment.get("autoRollbackConfiguration") or {}).get("alarms"):
        problems.append("prod endpoint has no auto-rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)")
    return problems


RULE = ResourceRule("prod-deployment-guardrails", "Prod endpoints deploy blue/green with auto-rollback alarms", MANDATORY, check)
