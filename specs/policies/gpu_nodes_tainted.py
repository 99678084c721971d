"""gpu-nodes-tainted: GPU node groups carry the nvidia.com/gpu NoSchedule taint.

Without the taint, CPU pods land on GPU nodes: they waste the most expensive instances and keep the
cluster autoscaler from scaling the GPU group back in after training.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule, is_gpu_node_group


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """A GPU node group has the nvidia.com/gpu taint with effect NO_SCHEDULE."""
    if not is_gpu_node_group(type_, props):
        return []
    taints = props.get("taints") or []
    if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE" for t in taints):
        return ["GPU node group has no nvidia.com/gpu NO_SCHEDULE taint: CPU pods would land on GPU nodes and keep them from scaling in"]
    return []


RULE = ResourceRule("gpu-nodes-tainted", "GPU node groups carry the nvidia.com/gpu NoSchedule taint", MANDATORY, check)
