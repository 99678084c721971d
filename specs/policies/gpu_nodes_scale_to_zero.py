"""gpu-nodes-scale-to-zero (advisory): GPU node groups scale to zero when no training runs.

Idle GPU nodes are the largest avoidable cost of a training cluster. Advisory, not mandatory: keeping
warm nodes for fast starts is a legitimate, if costly, choice.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import ADVISORY, ResourceRule, is_gpu_node_group


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """A GPU node group's scalingConfig.minSize is 0."""
    if not is_gpu_node_group(type_, props):
        return []
    minimum = (props.get("scalingConfig") or {}).get("minSize")
    if minimum:
        return [f"GPU node group keeps {minimum} node(s) running while no training runs (scalingConfig.minSize > 0)"]
    return []


RULE = ResourceRule("gpu-nodes-scale-to-zero", "GPU node groups scale to zero when idle", ADVISORY, check)
