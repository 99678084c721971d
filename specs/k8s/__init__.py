"""Every Kubernetes object of EKS training, rendered as plain dicts (apiVersion, kind, metadata, spec),
one module per object family:

- `common`: the manifest type, DNS-label names and the validation helpers the specs share;
- `gpu_pool`: the GPU nodes' taint and label, and the tolerations that match them;
- `team_namespace`: a team's Namespace, ResourceQuota, LimitRange, PriorityClasses and service account;
- `network_policy`: a team namespace's default-deny NetworkPolicy and the egress a training run needs;
- `training_job`: a model's Indexed Job, headless Service, schema ConfigMap and CronJob;
- `cron`: EventBridge Scheduler expressions converted to Kubernetes cron;
- `device_plugin`: the NVIDIA device plugin DaemonSet (clusters the stack creates);
- `cluster_autoscaler`: the cluster autoscaler's objects, image and IAM policy (clusters the stack creates).

Pure: no Pulumi and no cluster. `components.training_cluster` passes these dicts to
pulumi-kubernetes resources; `mlops train` submits `training_job.job(...)` with the Kubernetes
Python client.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: no Pulumi and no cluster; tests/test_layout.py checks it).
"""
