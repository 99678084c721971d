"""prod-min-two-instances: every production variant of a prod endpoint runs at least two instances.

SageMaker spreads a variant's instances over Availability Zones; one instance is one zone outage, or
one instance replacement, away from an endpoint that answers nothing.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule, environment


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """Each production variant of a prod endpoint configuration has an initial count of 2 or more."""
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration" or environment(props) != "prod":
        return []
    return [
        f"production variant {v.get('variantName')} has {int(v.get('initialInstanceCount') or 0)} instance(s); prod needs at least 2"
        for v in props.get("productionVariants") or []
        if (v.get("initialInstanceCount") or 0) < 2
    ]


RULE = ResourceRule("prod-min-two-instances", "Prod production variants run at least two instances", MANDATORY, check)
