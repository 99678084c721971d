"""The rendered Kubernetes objects of EKS training: API schemas, scheduling, security, names, cron."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import kubernetes_validate
import pytest

from specs import iam
from specs.k8s import cluster_autoscaler, common, cron, device_plugin, gpu_pool, network_policy, team_namespace, training_job

K8S_VERSION = "1.33"
"""The schemas we validate against: the EKS default of specs.config.schema (CreatedCluster.kubernetes_version)."""
ROLE_ARN = "arn:aws:iam::111111111111:role/t-dev-training-pods"
SCHEMA = {"format_version": 1, "label": "is_fraud", "task": "binary_classification", "features": []}
NOW = datetime(2026, 1, 15, 3, 4, 5, tzinfo=timezone.utc)


def team(**overrides: Any) -> team_namespace.TeamNamespaceSpec:
    values: dict[str, Any] = dict(
        namespace="t-dev", team="t", environment="dev", labels={"mlops.dev/cost-center": "cc-1"},
        gpu_quota=8, cpu_quota="96", memory_quota="768Gi", max_pods=64, role_arn=ROLE_ARN,
    )
    return team_namespace.TeamNamespaceSpec(**{**values, **overrides})


def training(**overrides: Any) -> training_job.TrainingJobSpec:
    values: dict[str, Any] = dict(
        namespace="t-dev", model="fraud-detection", service_account="training",
        image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t-dev-training:0.1.0",
        nodes=4, gpus_per_node=8, cpu="32", memory="256Gi", priority_class="t-dev-training-normal",
        region="eu-west-1", train_uri="s3://t-dev-features/offline/transactions",
        schema_config_map=training_job.schema_config_map_name("fraud-detection"),
        hyperparameters={"epochs": "10", "artifact_s3_uri": "s3://t-dev-artifacts/models", "hidden_units": "[64, 32]"},
        checkpoint_uri="s3://t-dev-artifacts/checkpoints/fraud-detection", max_runtime_seconds=86400,
        labels={"mlops.dev/team": "t"},
    )
    return training_job.TrainingJobSpec(**{**values, **overrides})


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(obj)["containers"]
    return only


def env_value(obj: dict[str, Any], name: str) -> Any:
    (entry,) = [e for e in container(obj)["env"] if e["name"] == name]
    return entry.get("value", entry.get("valueFrom"))


def everything(*, gpus: int, nodes: int, schedule: str | None) -> list[dict[str, Any]]:
    ns = team()
    spec = training(gpus_per_node=gpus, nodes=nodes)
    objects = [
        team_namespace.namespace(ns), team_namespace.resource_quota(ns), team_namespace.limit_range(ns), *team_namespace.priority_classes(ns), team_namespace.service_account(ns),
        training_job.headless_service(spec), training_job.feature_schema_config_map(spec, SCHEMA), training_job.job(spec, name=training_job.job_name(spec.model, now=NOW)),
        device_plugin.nvidia_device_plugin(node_selector=gpu_pool.GPU_POOL_LABEL),
        *cluster_autoscaler.cluster_autoscaler(cluster_name="t-dev-training", region="eu-west-1", role_arn=ROLE_ARN, kubernetes_version=K8S_VERSION),
        *network_policy.network_policies(namespace=ns.namespace, labels=ns.common_labels(), aws_cidrs=["10.0.0.0/16"]),
    ]
    if schedule is not None:
        objects.append(training_job.cron_job(spec, schedule=schedule))
    return objects


# --------------------------------------------------------------------------------------------
# API schemas


@pytest.mark.parametrize(
    ("gpus", "nodes", "schedule"),
    [(0, 1, None), (1, 4, "0 3 * * 1"), (8, 1, "*/15 * * * *"), (0, 4, "0 3 * * *")],
)
def test_every_rendered_object_validates_against_the_kubernetes_schemas_strictly(gpus, nodes, schedule):
    objects = everything(gpus=gpus, nodes=nodes, schedule=schedule)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ResourceQuota", "LimitRange", "PriorityClass", "ServiceAccount", "Service", "ConfigMap", "Job",
            "DaemonSet", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "Deployment", "NetworkPolicy"} <= kinds
    assert ("CronJob" in kinds) == (schedule is not None)
    for obj in objects:
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True) == K8S_VERSION, obj["kind"]


@pytest.mark.parametrize("mutation", ["unknown_field", "wrong_type", "missing_required"])
def test_the_validator_rejects_a_broken_job(mutation):
    obj = training_job.job(training(), name="fraud-detection-1")
    if mutation == "unknown_field":
        container(obj)["commands"] = ["torchrun"]  # a typo of `command`
    elif mutation == "wrong_type":
        obj["spec"]["completions"] = "four"
    else:
        del container(obj)["name"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------------------------
# Scheduling: GPU pool, tolerations, resources, quota


def tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """Kubernetes' rule (k8s.io/api/core/v1 Toleration.ToleratesTaint)."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return toleration.get("value", "") == taint["value"]


def test_gpu_pods_select_the_gpu_pool_and_tolerate_its_taint():
    pod = pod_spec(training_job.job(training(gpus_per_node=1), name="fraud-detection-1"))
    assert pod["nodeSelector"] == gpu_pool.GPU_POOL_LABEL
    assert any(tolerates(t, gpu_pool.GPU_TAINT) for t in pod["tolerations"])
    # The same taint, as the EKS node group API spells it.
    assert gpu_pool.eks_taint(gpu_pool.GPU_TAINT) == {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


def test_a_toleration_of_another_key_or_effect_would_not_match():
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, gpu_pool.GPU_TAINT)
    assert not tolerates({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, gpu_pool.GPU_TAINT)


def test_cpu_pods_stay_off_the_gpu_pool_and_request_no_gpu():
    obj = training_job.job(training(gpus_per_node=0, procs_per_node=2), name="fraud-detection-1")
    pod = pod_spec(obj)
    assert "nodeSelector" not in pod and "tolerations" not in pod
    resources = container(obj)["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "32", "memory": "256Gi"}


def test_gpu_requests_equal_limits_for_gpus_cpu_and_memory():
    resources = container(training_job.job(training(gpus_per_node=8), name="fraud-detection-1"))["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "8"}


def test_an_explicit_node_selector_wins_over_the_default_pool():
    pod = pod_spec(training_job.job(training(node_selector={"pool": "a100"}), name="fraud-detection-1"))
    assert pod["nodeSelector"] == {"pool": "a100"}


def test_the_device_plugin_runs_on_gpu_nodes_through_their_taint():
    ds = device_plugin.nvidia_device_plugin(node_selector=gpu_pool.GPU_POOL_LABEL)
    pod = pod_spec(ds)
    assert ds["metadata"]["namespace"] == "kube-system"
    assert pod["nodeSelector"] == gpu_pool.GPU_POOL_LABEL
    assert any(tolerates(t, gpu_pool.GPU_TAINT) for t in pod["tolerations"])
    assert pod["priorityClassName"] == "system-node-critical"
    digest = device_plugin.NVIDIA_DEVICE_PLUGIN_DIGESTS[device_plugin.NVIDIA_DEVICE_PLUGIN_VERSION]
    assert container(ds)["image"] == f"nvcr.io/nvidia/k8s-device-plugin@{digest}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(ds)["securityContext"]["privileged"] is False
    assert container(ds)["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert set(container(ds)["resources"]) == {"requests", "limits"}
    assert pod["volumes"] == [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"}}]
    assert container(ds)["volumeMounts"][0]["mountPath"] == "/var/lib/kubelet/device-plugins"
    assert container(ds)["securityContext"] == {
        "allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }
    with pytest.raises(ValueError, match="a pinned release whose digest is known: v0.18.2"):
        device_plugin.nvidia_device_plugin(node_selector=gpu_pool.GPU_POOL_LABEL, version="latest")


def test_the_quota_caps_gpu_requests_cpu_memory_and_pods():
    hard = team_namespace.resource_quota(team())["spec"]["hard"]
    assert hard == {
        "requests.nvidia.com/gpu": "8", "requests.cpu": "96", "requests.memory": "768Gi",
        "limits.memory": "768Gi", "pods": "64",
    }
    # Quota takes extended resources with the `requests.` prefix only.
    assert not [k for k in hard if k.startswith("limits.nvidia")]


def test_the_limit_range_defaults_every_container_and_caps_gpus_per_pod():
    limits = team_namespace.limit_range(team(max_cpu="64", max_memory="512Gi", max_gpus_per_pod=4))["spec"]["limits"]
    container_item, pod_item = limits
    assert container_item["type"] == "Container"
    # A GPU maximum needs a GPU limit on every container, hence the default of 0.
    assert container_item["default"] == container_item["defaultRequest"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "0"}
    assert container_item["max"] == {"cpu": "64", "memory": "512Gi"}
    assert pod_item == {"type": "Pod", "max": {"nvidia.com/gpu": "4"}}
    (container_only, _) = team_namespace.limit_range(team())["spec"]["limits"]
    assert "max" not in container_only


def test_a_training_pod_fits_the_limit_range_it_runs_under():
    ns = team(max_cpu="64", max_memory="512Gi", max_gpus_per_pod=8)
    container_item, pod_item = team_namespace.limit_range(ns)["spec"]["limits"]
    limits = container(training_job.job(training(gpus_per_node=8, cpu="32", memory="256Gi"), name="fraud-detection-1"))["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) <= int(pod_item["max"]["nvidia.com/gpu"])
    assert int(limits["cpu"]) <= int(container_item["max"]["cpu"])
    assert int(limits["memory"].removesuffix("Gi")) <= int(container_item["max"]["memory"].removesuffix("Gi"))


def test_priority_classes_are_per_namespace_and_low_never_preempts():
    classes = {pc["metadata"]["name"]: pc for pc in team_namespace.priority_classes(team())}
    assert list(classes) == ["t-dev-training-low", "t-dev-training-normal", "t-dev-training-high"]
    assert [pc["value"] for pc in classes.values()] == [1000, 10000, 100000]
    assert classes["t-dev-training-low"]["preemptionPolicy"] == "Never"
    assert classes["t-dev-training-high"]["preemptionPolicy"] == "PreemptLowerPriority"
    assert not any(pc["globalDefault"] for pc in classes.values())
    assert all(pc["description"] and "namespace" not in pc["metadata"] for pc in classes.values())
    assert team_namespace.priority_class_name(team().namespace, "high") == "t-dev-training-high"
    with pytest.raises(ValueError, match="allowed: low, normal, high"):
        team_namespace.priority_class_name(team().namespace, "urgent")


# --------------------------------------------------------------------------------------------
# Security: Pod Security Admission `restricted`, identity

_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standards `restricted` checks that apply to these pods (baseline included)."""
    problems = []
    pod_ctx = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(flag)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} is {kinds}")
    if pod_ctx.get("runAsUser") == 0:
        problems.append("pod runs as uid 0")
    for c in pod.get("initContainers", []) + pod["containers"]:
        ctx = c.get("securityContext", {})
        if ctx.get("privileged"):
            problems.append(f"{c['name']} privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']} allowPrivilegeEscalation is not false")
        if not (ctx.get("runAsNonRoot") is True or (pod_ctx.get("runAsNonRoot") is True and ctx.get("runAsNonRoot") is not False)):
            problems.append(f"{c['name']} runAsNonRoot is not true")
        if ctx.get("runAsUser") == 0:
            problems.append(f"{c['name']} runs as uid 0")
        if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
            problems.append(f"{c['name']} does not drop ALL capabilities")
        if set(ctx.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']} adds capabilities")
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']} seccompProfile is {seccomp}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{c['name']} uses a host port")
    return problems


@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_training_pods_satisfy_pod_security_restricted(gpus):
    obj = training_job.job(training(gpus_per_node=gpus), name="fraud-detection-1")
    pod = pod_spec(obj)
    assert restricted_violations(pod) == []
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(obj)["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The scheduled runs' pods are the same pods.
    assert pod_spec(training_job.cron_job(training(gpus_per_node=gpus), schedule="0 3 * * *")["spec"]["jobTemplate"]) == pod


@pytest.mark.parametrize(
    "break_it",
    [
        lambda pod: pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
        lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
        lambda pod: (pod["securityContext"].pop("runAsNonRoot"), pod["containers"][0]["securityContext"].pop("runAsNonRoot")),
        lambda pod: pod["securityContext"].pop("seccompProfile"),
        lambda pod: pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    ],
)
def test_the_restricted_check_catches_each_missing_setting(break_it):
    pod = pod_spec(training_job.job(training(), name="fraud-detection-1"))
    break_it(pod)
    assert restricted_violations(pod)


def test_the_namespace_enforces_pod_security_restricted():
    labels = team_namespace.namespace(team())["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["mlops.dev/team"] == "t" and labels["mlops.dev/environment"] == "dev"
    with pytest.raises(ValueError, match="Pod Security Admission labels are set by the framework"):
        team(labels={"pod-security.kubernetes.io/enforce": "privileged"})


def test_pods_mount_no_kubernetes_api_token_and_run_as_the_irsa_service_account():
    sa = team_namespace.service_account(team())
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert sa["automountServiceAccountToken"] is False
    pod = pod_spec(training_job.job(training(), name="fraud-detection-1"))
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == "training"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


def test_opaque_values_are_placed_never_formatted():
    class Opaque:
        """Stands for a pulumi.Output: formatting it would give a useless string."""

        def __str__(self) -> str:
            raise AssertionError("an opaque value was formatted")

        __format__ = __repr__ = lambda self, *a: self.__str__()  # noqa: E731

    role, train, checkpoints, artifacts = Opaque(), Opaque(), Opaque(), Opaque()
    sa = team_namespace.service_account(team(role_arn=role))
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] is role
    spec = training(train_uri=train, checkpoint_uri=checkpoints, hyperparameters={"artifact_s3_uri": artifacts})
    obj = training_job.job(spec, name="fraud-detection-1")
    assert env_value(obj, "MLOPS_TRAIN_URI") is train
    assert env_value(obj, "MLOPS_CHECKPOINT_URI") is checkpoints
    assert env_value(obj, "MLOPS_HP_ARTIFACT_S3_URI") is artifacts
    (ca_sa, *_) = cluster_autoscaler.cluster_autoscaler(cluster_name="c", region="eu-west-1", role_arn=role, kubernetes_version="1.33")
    assert ca_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] is role


# --------------------------------------------------------------------------------------------
# The run's command line and environment


def test_torchrun_runs_the_training_module_with_one_process_per_gpu():
    obj = training_job.job(training(nodes=4, gpus_per_node=8), name="fraud-detection-1")
    c = container(obj)
    assert c["command"] == ["torchrun"]
    args = c["args"]
    assert args[:9] == [
        "--nnodes=4", "--nproc-per-node=8", "--node-rank=$(JOB_COMPLETION_INDEX)", "--master-addr=$(MASTER_ADDR)",
        "--master-port=29500", "--rdzv-conf=timeout=1800", "-m", "mlops_training.main", "train",
    ]
    flags = dict(zip(args[9::2], args[10::2]))
    assert flags == {
        "--train": "$(MLOPS_TRAIN_URI)",
        "--schema": "/opt/ml/input/data/config/feature_schema.json",
        "--model-dir": "/opt/ml/model",
        "--output-dir": "/opt/ml/output/data",
        "--checkpoint-dir": "$(MLOPS_CHECKPOINT_URI)/$(JOB_NAME)",
        "--hyperparameters": flags["--hyperparameters"],
    }


def test_training_flags_exist_in_the_training_command_line():
    from mlops_training.main import build_parser

    known = {opt for action in build_parser()._actions for opt in action.option_strings}
    args = container(training_job.job(training(), name="fraud-detection-1"))["args"]
    script_args = args[args.index("mlops_training.main") + 1:]
    assert {a for a in script_args if a.startswith("--")} <= known


def test_cpu_pods_run_procs_per_node_processes_and_share_their_cpus():
    obj = training_job.job(training(gpus_per_node=0, procs_per_node=4, cpu="8"), name="fraud-detection-1")
    assert "--nproc-per-node=4" in container(obj)["args"]
    assert env_value(obj, "OMP_NUM_THREADS") == "2"
    assert env_value(obj, "MLOPS_HP_NUM_THREADS") == "2"
    assert env_value(training_job.job(training(gpus_per_node=0, procs_per_node=3, cpu="6500m"), name="x"), "OMP_NUM_THREADS") == "2"
    assert env_value(training_job.job(training(gpus_per_node=0, cpu="500m"), name="x"), "OMP_NUM_THREADS") == "1"
    # A thread count the caller chose wins.
    chosen = training_job.job(training(hyperparameters={"num_threads": "6"}), name="x")
    assert env_value(chosen, "MLOPS_HP_NUM_THREADS") == "6"


def test_the_hyperparameters_json_references_env_values_and_keys_the_artifact_by_job_name():
    obj = training_job.job(training(), name="fraud-detection-1")
    args = container(obj)["args"]
    document = json.loads(args[args.index("--hyperparameters") + 1])
    assert document == {
        "artifact_s3_uri": "$(MLOPS_HP_ARTIFACT_S3_URI)",
        "epochs": "$(MLOPS_HP_EPOCHS)",
        "hidden_units": "$(MLOPS_HP_HIDDEN_UNITS)",
        "model_name": "$(MLOPS_HP_MODEL_NAME)",
        "num_threads": "$(MLOPS_HP_NUM_THREADS)",
        "model_version": "$(JOB_NAME)",
    }
    assert env_value(obj, "MLOPS_HP_EPOCHS") == "10"
    assert env_value(obj, "MLOPS_HP_HIDDEN_UNITS") == "[64, 32]"
    assert env_value(obj, "MLOPS_HP_MODEL_NAME") == "fraud-detection"
    assert env_value(obj, "MLOPS_HP_NUM_THREADS") == "4"  # 32 CPUs over 8 GPU processes


def test_every_reference_is_defined_where_kubernetes_expands_it():
    obj = training_job.job(training(), name="fraud-detection-1")
    c = container(obj)
    defined: list[str] = []
    for entry in c["env"]:
        # An env value sees only the entries before it.
        value = entry.get("value")
        references = set(re.findall(r"\$\((\w+)\)", value)) if isinstance(value, str) else set()
        assert references <= set(defined), entry
        defined.append(entry["name"])
    assert env_value(obj, "JOB_NAME") == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}
    # Args see every env entry, plus JOB_COMPLETION_INDEX that the Job controller adds to Indexed Jobs.
    referenced = {name for arg in c["args"] for name in re.findall(r"\$\((\w+)\)", arg)}
    assert referenced <= set(defined) | {"JOB_COMPLETION_INDEX"}
    assert env_value(obj, "MASTER_ADDR") == "$(JOB_NAME)-0.fraud-detection-rdzv"
    assert env_value(obj, "AWS_REGION") == env_value(obj, "AWS_DEFAULT_REGION") == "eu-west-1"


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"model_version": "7"}, "set by the framework"),
        ({"note": 'say "hi"'}, "cannot travel"),
        ({"note": "cost $(HOME)"}, "cannot travel"),
        ({"a-b": "1", "a_b": "2"}, "both travel as MLOPS_HP_A_B"),
    ],
)
def test_hyperparameters_that_cannot_travel_are_refused(hyperparameters, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        training(hyperparameters=hyperparameters)


def test_an_invalid_job_spec_names_every_problem():
    with pytest.raises(ValueError) as info:
        training(nodes=0, gpus_per_node=-1, cpu="lots", memory="12 GB", model="Fraud_Detection")
    text = str(info.value)
    for fragment in ("nodes=0", "gpus_per_node=-1", "cpu='lots'", "memory='12 GB'", "model='Fraud_Detection'"):
        assert fragment in text


def test_the_job_is_indexed_with_one_pod_per_node_and_bounded_in_time():
    spec = training_job.job(training(nodes=4, max_runtime_seconds=7200), name="fraud-detection-1")["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["activeDeadlineSeconds"] == 7200
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 3 * 24 * 3600
    assert spec["podReplacementPolicy"] == "Failed"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["priorityClassName"] == "t-dev-training-normal"
    assert spec["template"]["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"


def test_volumes_hold_the_schema_and_a_memory_backed_dev_shm():
    obj = training_job.job(training(), name="fraud-detection-1")
    volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
    mounts = {v["mountPath"]: v["name"] for v in container(obj)["volumeMounts"]}
    assert volumes[mounts["/opt/ml/input/data/config"]]["configMap"] == {"name": "fraud-detection-feature-schema"}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory"}
    cm = training_job.feature_schema_config_map(training(), SCHEMA)
    assert cm["metadata"]["name"] == "fraud-detection-feature-schema"
    assert json.loads(cm["data"]["feature_schema.json"]) == SCHEMA


def test_the_headless_service_gives_every_pod_of_the_model_a_dns_name():
    spec = training()
    svc = training_job.headless_service(spec)
    obj = training_job.job(spec, name="fraud-detection-1")
    pod_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"] == [{"name": "rendezvous", "port": 29500, "targetPort": 29500, "protocol": "TCP"}]
    assert pod_spec(obj)["subdomain"] == svc["metadata"]["name"] == "fraud-detection-rdzv"
    # The scheduled runs' pods carry the same labels.
    scheduled = training_job.cron_job(spec, schedule="0 3 * * *")
    assert svc["spec"]["selector"].items() <= scheduled["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"].items()


# --------------------------------------------------------------------------------------------
# Names


def test_job_names_are_dns_labels_with_the_utc_time():
    assert training_job.job_name("fraud-detection", now=NOW) == "fraud-detection-20260115-030405"
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert training_job.job_name("fraud-detection", now=paris) == "fraud-detection-20260115-030405"
    with pytest.raises(ValueError, match="no time zone"):
        training_job.job_name("fraud-detection", now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("model", ["a", "fraud-detection", "m" * 63, "x" * 42 + "-yz"])
def test_job_names_leave_room_for_the_pod_index_in_the_hostname(model):
    name = training_job.job_name(model, now=NOW)
    assert common.is_dns_label(name) and len(name) <= training_job.MAX_JOB_NAME == 59
    assert common.is_dns_label(f"{name}-{training_job.MAX_NODES - 1}")  # the last pod's hostname, <= 63
    training_job.job(training(model=model, schema_config_map="s", nodes=training_job.MAX_NODES), name=name)


@pytest.mark.parametrize("model", ["fraud-detection", "m" * 63, "a" * 47 + "-bc"])
def test_scheduled_job_names_leave_room_for_the_controllers_suffix_and_the_index(model):
    scheduled = training_job.cron_job(training(model=model, schema_config_map="s"), schedule="0 3 * * *")
    name = scheduled["metadata"]["name"]
    assert common.is_dns_label(name) and len(name) <= 48
    # The CronJob controller names each Job `<cronjob>-<scheduled minute>`, at most 11 characters more.
    assert common.is_dns_label(f"{name}-{'9' * 10}-{training_job.MAX_NODES - 1}")


def test_job_refuses_a_name_without_room_for_the_index():
    with pytest.raises(ValueError, match="at most 59"):
        training_job.job(training(), name="j" * 60)
    with pytest.raises(ValueError, match="DNS label"):
        training_job.job(training(), name="Fraud_1")


# --------------------------------------------------------------------------------------------
# Schedules


@pytest.mark.parametrize(
    ("eventbridge", "kubernetes"),
    [
        ("cron(0 3 ? * MON *)", "0 3 * * MON"),
        ("cron(0 3 ? * 2-6 *)", "0 3 * * 1-5"),
        ("cron(30 2 ? * 1,7 *)", "30 2 * * 0,6"),
        ("cron(0 3 ? * 1 *)", "0 3 * * 0"),
        ("cron(0/15 * * * ? *)", "0/15 * * * *"),
        ("cron(0 */6 1 JAN-MAR ? *)", "0 */6 1 JAN-MAR *"),
        ("cron(0 * ? * * *)", "0 * * * *"),
        ("cron(5 4 1,15 * ? *)", "5 4 1,15 * *"),
        ("rate(1 minute)", "* * * * *"),
        ("rate(15 minutes)", "*/15 * * * *"),
        ("rate(60 minutes)", "0 * * * *"),
        ("rate(120 minutes)", "0 */2 * * *"),
        ("rate(6 hours)", "0 */6 * * *"),
        ("rate(24 hours)", "0 0 * * *"),
        ("rate(1 day)", "0 0 * * *"),
        ("rate(7 days)", "0 0 * * 0"),
    ],
)
def test_eventbridge_schedules_convert_to_kubernetes_cron(eventbridge, kubernetes):
    assert cron.cron_for_kubernetes(eventbridge) == kubernetes


@pytest.mark.parametrize(
    ("eventbridge", "message"),
    [
        ("cron(0 3 ? * MON 2027)", "year '2027'; Kubernetes cron has no year field, allowed: '*'"),
        ("cron(0 3 L * ? *)", "uses 'L'"),
        ("cron(0 3 ? * 6L *)", "uses 'L'"),
        ("cron(0 3 15W * ? *)", "uses 'W'"),
        ("cron(0 3 ? * MON#2 *)", "uses '#'"),
        ("cron(0 3 * * * *)", "'?' in exactly one of"),
        ("cron(0 3 ? * 8 *)", "outside 1-7"),
        ("cron(0 3 ? * FRI-MON *)", "runs backwards"),
        ("cron(0 3 ? * */2 *)", "no '/' step"),
        ("cron(0 3 ? *)", "6 fields"),
        ("rate(7 minutes)", "no exact Kubernetes cron equivalent"),
        ("rate(5 hours)", "no exact Kubernetes cron equivalent"),
        ("rate(2 days)", "no exact Kubernetes cron equivalent"),
        ("rate(0 minutes)", "at least 1"),
        ("at(2026-01-01T00:00:00)", "expected cron("),
    ],
)
def test_eventbridge_schedules_without_a_kubernetes_equivalent_are_refused(eventbridge, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cron.cron_for_kubernetes(eventbridge)


def test_scheduled_runs_are_the_same_job_in_utc_never_overlapping():
    spec = training()
    scheduled = training_job.cron_job(spec, schedule=cron.cron_for_kubernetes("cron(0 3 ? * MON *)"))
    assert scheduled["spec"]["schedule"] == "0 3 * * MON"
    assert scheduled["spec"]["timeZone"] == "Etc/UTC"
    assert scheduled["spec"]["concurrencyPolicy"] == "Forbid"
    assert scheduled["spec"]["startingDeadlineSeconds"] > 0
    assert scheduled["spec"]["successfulJobsHistoryLimit"] >= 1 and scheduled["spec"]["failedJobsHistoryLimit"] >= 1
    assert scheduled["spec"]["jobTemplate"]["spec"] == training_job.job(spec, name="fraud-detection-1")["spec"]
    with pytest.raises(ValueError, match="5-field"):
        training_job.cron_job(spec, schedule="cron(0 3 ? * MON *)")


# --------------------------------------------------------------------------------------------
# Cluster autoscaler


def test_the_autoscaler_discovers_this_clusters_groups_with_a_matching_version():
    objects = {o["kind"]: o for o in cluster_autoscaler.cluster_autoscaler(
        cluster_name="t-dev-training", region="eu-west-1", role_arn=ROLE_ARN, kubernetes_version="1.33",
    )}
    assert objects["ServiceAccount"]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert objects["ServiceAccount"]["metadata"]["name"] == cluster_autoscaler.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT
    deployment = objects["Deployment"]
    c = container(deployment)
    assert c["image"] == "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.6"
    assert "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/t-dev-training" in c["command"]
    for flag in ("--balance-similar-node-groups", "--expander=least-waste", "--skip-nodes-with-system-pods=false", "--cloud-provider=aws"):
        assert flag in c["command"]
    assert any(a.startswith("--scale-down-unneeded-time=") for a in c["command"])
    assert pod_spec(deployment)["serviceAccountName"] == cluster_autoscaler.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT
    for binding in (objects["ClusterRoleBinding"], objects["RoleBinding"]):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cluster-autoscaler", "namespace": "kube-system"}]
    assert restricted_violations(pod_spec(deployment)) == []


def test_every_pinned_autoscaler_matches_its_kubernetes_minor():
    for minor, tag in cluster_autoscaler.CLUSTER_AUTOSCALER_TAGS.items():
        assert tag.startswith(f"v{minor}."), (minor, tag)
    assert cluster_autoscaler.cluster_autoscaler_image("1.34", "v1.34.9").endswith(":v1.34.9")
    with pytest.raises(ValueError, match="does not match Kubernetes 1.33"):
        cluster_autoscaler.cluster_autoscaler_image("1.33", "v1.32.1")
    with pytest.raises(ValueError, match="no pinned cluster-autoscaler for Kubernetes 1.27"):
        cluster_autoscaler.cluster_autoscaler_image("1.27")


def test_the_autoscaler_policy_names_its_actions_and_resizes_only_this_clusters_groups():
    policy = cluster_autoscaler.cluster_autoscaler_policy("t-dev-training")
    assert iam.wildcard_actions(policy) == []
    statements = {s["Sid"]: s for s in policy["Statement"]}
    for statement in statements.values():
        if statement["Resource"] == ["*"] and "Condition" not in statement:
            # Only read actions, which AWS grants on "*" alone.
            assert all(re.match(r"^(autoscaling|ec2):(Describe|Get)", a) for a in statement["Action"]), statement
    scale = statements["ScaleClusterNodeGroups"]
    assert scale["Action"] == ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    assert scale["Condition"]["StringEquals"]["aws:ResourceTag/k8s.io/cluster-autoscaler/t-dev-training"] == "owned"
    assert statements["DescribeClusterNodeGroups"]["Resource"] == ["arn:aws:eks:*:*:nodegroup/t-dev-training/*/*"]
    mutating = [a for s in statements.values() for a in s["Action"] if not re.match(r"^\w+:(Describe|Get)", a)]
    assert sorted(mutating) == ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
