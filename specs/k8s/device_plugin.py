"""The NVIDIA device plugin DaemonSet, a cluster add-on of the clusters the stack creates: it
advertises `nvidia.com/gpu` on the GPU pool's nodes so that training pods can request GPUs.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from specs.k8s.common import Manifest
from specs.k8s.gpu_pool import gpu_tolerations

NVIDIA_DEVICE_PLUGIN_VERSION = "v0.18.2"
"""nvcr.io/nvidia/k8s-device-plugin tag."""
_VERSION_TAG = re.compile(r"^v\d+\.\d+\.\d+$")


def nvidia_device_plugin(*, node_selector: Mapping[str, str], version: str = NVIDIA_DEVICE_PLUGIN_VERSION) -> Manifest:
    """The NVIDIA device plugin DaemonSet (upstream's deployments/static/nvidia-device-plugin.yml),
    on GPU nodes only: it advertises `nvidia.com/gpu` to the kubelet."""
    if not _VERSION_TAG.match(version):
        raise ValueError(f"device plugin version {version!r}; allowed: a pinned release tag such as {NVIDIA_DEVICE_PLUGIN_VERSION!r}")
    labels = {"name": "nvidia-device-plugin-ds"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system", "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "nodeSelector": dict(node_selector),
                    "tolerations": gpu_tolerations(),
                    # A critical add-on: the scheduler makes room for it on a full node.
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": "nvidia-device-plugin-ctr",
                        "image": f"nvcr.io/nvidia/k8s-device-plugin:{version}",
                        "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}],
                    }],
                    "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"}}],
                },
            },
        },
    }
