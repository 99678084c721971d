"""The GPU node pool's contract: one taint and one label, shared by the EKS node group that carries
them (components.training_cluster), the tolerations and node selectors of the pods that run there
(training_job, device_plugin) and the quota that counts their GPUs (team_namespace).

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

from collections.abc import Mapping

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT: dict[str, str] = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
"""The taint of GPU nodes (Kubernetes spelling); only pods that tolerate it run there."""
GPU_POOL_LABEL: dict[str, str] = {"mlops.dev/pool": "gpu"}
"""The label of GPU nodes; GPU training pods select it."""

_EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def eks_taint(taint: Mapping[str, str]) -> dict[str, str]:
    """The EKS NodeGroup API spelling of a Kubernetes taint (`NoSchedule` -> `NO_SCHEDULE`)."""
    effect = taint["effect"]
    if effect not in _EKS_TAINT_EFFECTS:
        raise ValueError(f"taint effect {effect!r}; allowed: {', '.join(_EKS_TAINT_EFFECTS)}")
    return {"key": taint["key"], "value": taint["value"], "effect": _EKS_TAINT_EFFECTS[effect]}


def gpu_tolerations() -> list[dict[str, str]]:
    """Tolerate the GPU taint whatever its value (the device plugin's upstream manifest does the same)."""
    return [{"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}]
