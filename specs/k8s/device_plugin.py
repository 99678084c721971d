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

NVIDIA_DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_VERSION = "v0.18.2"
"""nvcr.io/nvidia/k8s-device-plugin tag."""
NVIDIA_DEVICE_PLUGIN_DIGESTS = {
    "v0.18.2": "sha256:b5788e29e7ae5272de8de863ebe386d6611e608421a6ecc5b4e7d5952aba637f",
}
"""The registry digest of each release we run, so that a moved tag cannot change the image (the v0.18.2
digest as two independent public deployments pin it)."""
_VERSION_TAG = re.compile(r"^v\d+\.\d+\.\d+$")
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}
"""The plugin is a small gRPC server: it lists the GPUs and answers the kubelet's Allocate calls."""
CHECKOV_SKIPS = {
    "CKV_K8S_23": "the plugin creates its socket in the root-owned hostPath /var/lib/kubelet/device-plugins, so it runs as root (NVIDIA's manifest)",
    "CKV_K8S_40": "runs as root, see CKV_K8S_23",
    "CKV_K8S_8": "the plugin serves no health endpoint; the kubelet re-registers it when its socket goes",
    "CKV_K8S_9": "the plugin serves no readiness endpoint; it is ready once it registered with the kubelet",
    "CKV_K8S_22": "NVIDIA's manifest does not run it read-only and we cannot test a GPU node here; kept writable",
}
"""Checks that do not fit a device plugin, each with its reason (checkov reads them from the object)."""


def nvidia_device_plugin(*, node_selector: Mapping[str, str], version: str = NVIDIA_DEVICE_PLUGIN_VERSION) -> Manifest:
    """The NVIDIA device plugin DaemonSet (upstream's deployments/static/nvidia-device-plugin.yml),
    on GPU nodes only: it advertises `nvidia.com/gpu` to the kubelet. Hardened as upstream allows: not
    privileged, no privilege escalation, every capability dropped, RuntimeDefault seccomp, bounded
    resources, no API token, the image by digest; CHECKOV_SKIPS names what does not apply and why."""
    if not _VERSION_TAG.match(version) or version not in NVIDIA_DEVICE_PLUGIN_DIGESTS:
        raise ValueError(
            f"device plugin version {version!r}; allowed: a pinned release whose digest is known: {', '.join(NVIDIA_DEVICE_PLUGIN_DIGESTS)}"
        )
    labels = {"name": "nvidia-device-plugin-ds"}
    skips = {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(sorted(CHECKOV_SKIPS.items()), start=1)}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system", "labels": dict(labels), "annotations": skips},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": dict(node_selector),
                    "tolerations": gpu_tolerations(),
                    # A critical add-on: the scheduler makes room for it on a full node.
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": "nvidia-device-plugin-ctr",
                        "image": f"{NVIDIA_DEVICE_PLUGIN_IMAGE}@{NVIDIA_DEVICE_PLUGIN_DIGESTS[version]}",
                        "imagePullPolicy": "Always",
                        "resources": {k: dict(v) for k, v in RESOURCES.items()},
                        "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "privileged": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}],
                    }],
                    "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"}}],
                },
            },
        },
    }
