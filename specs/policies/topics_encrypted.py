"""topics-encrypted: SNS topics use a KMS key.

Alarm and model-approval notifications name endpoints, models and thresholds; they are encrypted at
rest like everything else the stack stores.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """An SNS topic names a KMS master key."""
    if type_ == "aws:sns/topic:Topic" and not props.get("kmsMasterKeyId"):
        return ["topic is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


RULE = ResourceRule("topics-encrypted", "SNS topics use KMS", MANDATORY, check)
