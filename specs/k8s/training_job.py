"""A model's training runs on the cluster, rendered as plain dicts: the Indexed Job of one run, the
headless Service its pods rendezvous through, the ConfigMap holding its feature schema and the
CronJob of its scheduled runs, all derived from one `TrainingJobSpec`.

`components.training_cluster` passes these dicts to pulumi-kubernetes resources; `mlops train`
submits `job(...)` with the Kubernetes Python client.
Fields documented as *opaque* (ARNs, S3 URIs, hyperparameter values) may be Pulumi Outputs: they
are only placed into the dicts, never formatted, joined or inspected. Where a string must combine
an opaque value with something else (the checkpoint prefix plus the run's name, the hyperparameters
JSON) the opaque value travels in an environment variable and Kubernetes joins it at run time with
its `$(VAR)` expansion of container env and args.

One training run is an Indexed Job: `nodes` pods, pod i running
`torchrun --node-rank=i --master-addr=<job>-0.<service>` over its GPUs. A headless Service gives
each pod the DNS name `<job>-<index>.<service>`, so rank 0's address is known before it exists.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from specs.k8s.common import (
    CPU_QUANTITY,
    QUANTITY,
    Manifest,
    check_integer,
    check_labels,
    check_namespace,
    cpu_cores,
    is_dns_label,
    raise_problems,
    truncate,
)
from specs.k8s.gpu_pool import GPU_POOL_LABEL, GPU_RESOURCE, gpu_tolerations

# --------------------------------------------------------------------------------------------
# Names

MODEL_LABEL = "mlops.dev/model"
COMPONENT_LABEL = "mlops.dev/component"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
"""Set by the Job controller on every pod of a Job (Kubernetes >= 1.27); the pod reads it through the downward API."""

MAX_NODES = 999
"""Pods per run. The index suffix of a pod's hostname (`-<index>`) then takes at most 4 characters."""
MAX_JOB_NAME = 63 - len(f"-{MAX_NODES}")
"""59: an Indexed Job's pods are named host `<job>-<index>`, and a hostname is one DNS label (<= 63)."""
CRON_SUFFIX = 11
"""The CronJob controller names each Job `<cronjob>-<scheduled time>`; Kubernetes reserves 11 characters for it
(which is why it caps CronJob names at 52)."""
MAX_CRON_JOB_NAME = MAX_JOB_NAME - CRON_SUFFIX
"""48: so that the Jobs a CronJob creates still leave room for the pods' index suffix."""
_TIMESTAMP = "%Y%m%d-%H%M%S"
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

SCHEMA_MOUNT = "/opt/ml/input/data/config"
SCHEMA_FILE = "feature_schema.json"
MODEL_DIR = "/opt/ml/model"
OUTPUT_DIR = "/opt/ml/output"
CONTAINER_NAME = "train"
RUN_AS_USER = 1000
"""The `mlops` user (uid and gid 1000) that training/Dockerfile creates and runs as."""


def job_name(model: str, *, now: datetime) -> str:
    """A one-off run's Job name: `<model>-<UTC yyyymmdd-hhmmss>`, at most MAX_JOB_NAME characters
    (the model part is shortened when needed), so that `<job>-<index>` is a valid hostname."""
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime (e.g. datetime.now(timezone.utc))")
    stamp = now.astimezone(timezone.utc).strftime(_TIMESTAMP)
    return f"{truncate(model, MAX_JOB_NAME - len(stamp) - 1)}-{stamp}"


def cron_job_name(model: str) -> str:
    """The scheduled runs' CronJob: the model's name, shortened to MAX_CRON_JOB_NAME characters."""
    return truncate(model, MAX_CRON_JOB_NAME)


def rendezvous_service_name(model: str) -> str:
    """The headless Service whose DNS names (`<job>-<index>.<service>`) the model's pods find rank 0 by."""
    return f"{truncate(model, 63 - len('-rdzv'))}-rdzv"


def schema_config_map_name(model: str) -> str:
    """The ConfigMap holding the model's feature_schema.json."""
    return f"{model}-feature-schema"


# --------------------------------------------------------------------------------------------
# Training runs

TORCHRUN = "torchrun"
MASTER_PORT = 29500
_RESERVED_HYPERPARAMETERS = {
    "model_version": "each run's model_version is its Job name, so that its artifact key is unique",
}
_HP_ENV_PREFIX = "MLOPS_HP_"


@dataclass(frozen=True, kw_only=True)
class TrainingJobSpec:
    """One model's training runs on the cluster: what every run of its Job (one-off or scheduled) shares."""

    namespace: str
    """The team's namespace (see team_namespace.TeamNamespaceSpec)."""
    model: str
    """The model's slug (key under model_registry.models)."""
    service_account: str
    """The IRSA service account the pods run as (see `team_namespace.service_account`)."""
    image: str
    """The training image (its command is replaced by torchrun)."""
    nodes: int
    """Pods per run, one per node (torchrun --nnodes), 1 to MAX_NODES."""
    gpus_per_node: int
    """GPUs each pod requests; one training process per GPU. 0: CPU pods with `procs_per_node` processes."""
    procs_per_node: int = 1
    """Training processes per pod when gpus_per_node is 0. @default 1."""
    cpu: str
    """CPU each pod requests and is limited to (e.g. "3")."""
    memory: str
    """Memory each pod requests and is limited to (e.g. "12Gi"); /dev/shm counts against it."""
    priority_class: str
    """One of the team's PriorityClasses (see `team_namespace.priority_class_name`)."""
    region: str
    """The AWS region (S3, STS and SageMaker calls)."""
    train_uri: Any
    """Opaque: the S3 prefix of the feature group's offline store."""
    schema_config_map: str
    """The ConfigMap holding feature_schema.json (see `feature_schema_config_map`)."""
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """Name -> opaque string value. `model_version` is added per run (the Job's name); `model_name`
    defaults to the model and `num_threads` to the pod's CPUs per process."""
    checkpoint_uri: Any
    """Opaque: `s3://bucket/checkpoints/<model>`; each run checkpoints under `<checkpoint_uri>/<job name>`."""
    max_runtime_seconds: int
    """activeDeadlineSeconds: Kubernetes stops a run after this long."""
    backoff_limit: int = 0
    """Failed pods tolerated before the run fails. @default 0: one failed rank fails the run (the other
    ranks cannot continue without it). A retry resumes from the run's checkpoints; it fails every rank."""
    ttl_seconds_after_finished: int = 3 * 24 * 3600
    """How long a finished run (and its pods' logs) is kept. @default 3 days."""
    rendezvous_timeout_seconds: int = 1800
    """How long ranks wait for each other at start (GPU nodes may be scaled up one by one). @default 1800."""
    node_selector: Mapping[str, str] | None = None
    """@default GPU_POOL_LABEL when gpus_per_node > 0, else none."""
    master_port: int = MASTER_PORT
    """Rank 0's rendezvous port. @default 29500."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object and pod. @default none."""
    tracking_uri: Any = None
    """Opaque: the MLflow tracking server the runs log to (a SageMaker tracking server's ARN; the image's
    `sagemaker-mlflow` plugin signs with the pods' IRSA role), as MLFLOW_TRACKING_URI. @default none."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_namespace(self.namespace, problems)
        if not (isinstance(self.model, str) and _SLUG.match(self.model) and len(self.model) <= 63):
            problems.append(f"model={self.model!r}: a slug (lowercase letters, digits, single '-', starting with a letter) of at most 63 characters")
        if not is_dns_label(self.schema_config_map, limit=253):
            problems.append(f"schema_config_map={self.schema_config_map!r}: lowercase letters, digits and '-'")
        check_integer(self, "nodes", problems, 1, MAX_NODES)
        for name, low in (("gpus_per_node", 0), ("procs_per_node", 1), ("max_runtime_seconds", 1), ("backoff_limit", 0),
                          ("ttl_seconds_after_finished", 0), ("rendezvous_timeout_seconds", 1)):
            check_integer(self, name, problems, low)
        check_integer(self, "master_port", problems, 1, 65535)
        if not (isinstance(self.cpu, str) and CPU_QUANTITY.match(self.cpu)) or cpu_cores(self.cpu) <= 0:
            problems.append(f"cpu={self.cpu!r}: a CPU quantity above 0 such as '4', '0.5' or '500m'")
        if not (isinstance(self.memory, str) and QUANTITY.match(self.memory)):
            problems.append(f"memory={self.memory!r}: a memory quantity such as '12Gi'")
        if isinstance(self.gpus_per_node, int) and self.gpus_per_node > 0 and self.procs_per_node != 1:
            problems.append(f"procs_per_node={self.procs_per_node!r}: applies to CPU pods only (with GPUs, one process runs per GPU)")
        check_labels("labels", self.labels, problems)
        if self.node_selector is not None:
            check_labels("node_selector", self.node_selector, problems)
        problems.extend(_hyperparameter_problems(self.hyperparameters))
        raise_problems("TrainingJobSpec", problems)

    @property
    def procs(self) -> int:
        """Training processes per pod (torchrun --nproc-per-node)."""
        return self.gpus_per_node if self.gpus_per_node > 0 else self.procs_per_node

    @property
    def service(self) -> str:
        return rendezvous_service_name(self.model)

    def selector(self) -> dict[str, str]:
        """The labels every training pod of this model carries (the headless Service selects them)."""
        return {MODEL_LABEL: self.model, COMPONENT_LABEL: "training"}

    def common_labels(self) -> dict[str, str]:
        return {**self.labels, **self.selector()}

    def threads_per_process(self) -> int:
        """CPU threads per training process: the pod's CPUs shared by its processes (at least 1).
        Containers see every CPU of the node, so the training code cannot work this out itself."""
        return max(1, math.floor(cpu_cores(self.cpu) / self.procs))

    def effective_node_selector(self) -> dict[str, str]:
        if self.node_selector is not None:
            return dict(self.node_selector)
        return dict(GPU_POOL_LABEL) if self.gpus_per_node > 0 else {}


def _hp_env_name(key: str) -> str:
    return _HP_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _hyperparameter_problems(hyperparameters: Mapping[str, Any]) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for key, value in hyperparameters.items():
        if not isinstance(key, str) or not key:
            problems.append(f"hyperparameters key {key!r}: a non-empty string")
            continue
        if key in _RESERVED_HYPERPARAMETERS:
            problems.append(f"hyperparameters[{key!r}]: set by the framework ({_RESERVED_HYPERPARAMETERS[key]}); remove it")
        env = _hp_env_name(key)
        if env in seen:
            problems.append(f"hyperparameters {seen[env]!r} and {key!r}: both travel as {env}; rename one")
        seen[env] = key
        # Plain strings are checked; opaque values (ARNs, S3 URIs, names) are trusted to be as plain.
        if isinstance(value, str) and (json.dumps(value, ensure_ascii=False)[1:-1] != value or "$" in value):
            problems.append(
                f"hyperparameters[{key!r}]={value!r}: quotes, backslashes, control characters and '$' cannot travel "
                "through Kubernetes' $(VAR) expansion into the hyperparameters JSON"
            )
    return problems


def _hyperparameters(spec: TrainingJobSpec) -> dict[str, Any]:
    values: dict[str, Any] = {"model_name": spec.model, "num_threads": str(spec.threads_per_process())}
    values.update(spec.hyperparameters)
    return values


def headless_service(spec: TrainingJobSpec) -> Manifest:
    """The Service that gives each training pod the DNS name `<job>-<index>.<service>`.

    Headless (no virtual IP: names resolve to pod IPs), and publishing not-ready pods, so that rank
    0's name resolves as soon as its pod has an IP; the rendezvous waits for the rest.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.service, "namespace": spec.namespace, "labels": spec.common_labels()},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": spec.selector(),
            "ports": [{"name": "rendezvous", "port": spec.master_port, "targetPort": spec.master_port, "protocol": "TCP"}],
        },
    }


def feature_schema_config_map(spec: TrainingJobSpec, schema: Mapping[str, Any]) -> Manifest:
    """The model's feature schema, mounted into every pod as `<SCHEMA_MOUNT>/feature_schema.json`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.schema_config_map, "namespace": spec.namespace, "labels": spec.common_labels()},
        "data": {SCHEMA_FILE: json.dumps(schema, indent=2, sort_keys=True) + "\n"},
    }


def _env(spec: TrainingJobSpec, hyperparameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Kubernetes expands $(VAR) in an env value from the entries before it, and in args from all.
    env: list[dict[str, Any]] = [
        {"name": "JOB_NAME", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}},
        {"name": "MASTER_ADDR", "value": f"$(JOB_NAME)-0.{spec.service}"},
        {"name": "AWS_REGION", "value": spec.region},
        {"name": "AWS_DEFAULT_REGION", "value": spec.region},
        # The root filesystem is read-only; libraries that cache under $HOME write to the /tmp volume.
        {"name": "HOME", "value": "/tmp"},
        # OpenMP/MKL pools; torchrun would otherwise force 1 thread when it starts several processes.
        {"name": "OMP_NUM_THREADS", "value": str(spec.threads_per_process())},
        {"name": "MLOPS_TRAIN_URI", "value": spec.train_uri},
        {"name": "MLOPS_CHECKPOINT_URI", "value": spec.checkpoint_uri},
    ]
    if spec.tracking_uri is not None:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": spec.tracking_uri})
    env.extend({"name": _hp_env_name(k), "value": v} for k, v in sorted(hyperparameters.items()))
    return env


def _args(spec: TrainingJobSpec, hyperparameters: Mapping[str, Any]) -> list[str]:
    document = {k: f"$({_hp_env_name(k)})" for k in hyperparameters}
    document["model_version"] = "$(JOB_NAME)"
    return [
        f"--nnodes={spec.nodes}",
        f"--nproc-per-node={spec.procs}",
        # JOB_COMPLETION_INDEX: added to the container's env by the Job controller (Indexed mode).
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--master-addr=$(MASTER_ADDR)",
        f"--master-port={spec.master_port}",
        f"--rdzv-conf=timeout={spec.rendezvous_timeout_seconds}",
        "-m", "mlops_training.main",
        "train",
        "--train", "$(MLOPS_TRAIN_URI)",
        "--schema", f"{SCHEMA_MOUNT}/{SCHEMA_FILE}",
        "--model-dir", MODEL_DIR,
        "--output-dir", f"{OUTPUT_DIR}/data",
        "--checkpoint-dir", "$(MLOPS_CHECKPOINT_URI)/$(JOB_NAME)",
        "--hyperparameters", json.dumps(document, sort_keys=True),
    ]


def _resources(spec: TrainingJobSpec) -> dict[str, dict[str, str]]:
    amounts = {"cpu": spec.cpu, "memory": spec.memory}
    if spec.gpus_per_node > 0:
        amounts[GPU_RESOURCE] = str(spec.gpus_per_node)
    # requests == limits: Guaranteed QoS, and GPUs cannot be overcommitted anyway.
    return {"requests": dict(amounts), "limits": dict(amounts)}


def pod_security_context() -> dict[str, Any]:
    """Pod-level settings that Pod Security Admission `restricted` requires (with the container's)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Restricted, and a read-only root filesystem: the run writes only to its volumes (/tmp included)."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True, "readOnlyRootFilesystem": True}


CHECKOV_SKIPS = {
    "CKV_K8S_40": "the training image gives /opt/ml and its home to uid 1000 (training/Dockerfile); the pod runs as it, non-root",
}
"""Checks that do not fit a training Job, each with its reason (checkov reads them from the object)."""
UNPINNED_IMAGE_SKIP = ("CKV_K8S_43", "ECR repositories are IMMUTABLE, so the tag names one image; the stack's images config pins a digest when it carries one")


def checkov_annotations(spec: TrainingJobSpec) -> dict[str, str]:
    """`checkov.io/skipN` annotations of a Job or CronJob: CHECKOV_SKIPS, and the digest check only
    when the image is referenced by tag."""
    skips = dict(CHECKOV_SKIPS)
    if "@sha256:" not in spec.image:
        skips[UNPINNED_IMAGE_SKIP[0]] = UNPINNED_IMAGE_SKIP[1]
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(sorted(skips.items()), start=1)}


def _pod_template(spec: TrainingJobSpec) -> dict[str, Any]:
    hyperparameters = _hyperparameters(spec)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": spec.service,
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        # Service links would add Docker-link variables of every Service in the namespace to the
        # training environment (a Service named "master" sets MASTER_PORT=tcp://...).
        "enableServiceLinks": False,
        "priorityClassName": spec.priority_class,
        "securityContext": pod_security_context(),
        "containers": [{
            "name": CONTAINER_NAME,
            "image": spec.image,
            "imagePullPolicy": "Always",
            "command": [TORCHRUN],
            "args": _args(spec, hyperparameters),
            "env": _env(spec, hyperparameters),
            "ports": [{"name": "rendezvous", "containerPort": spec.master_port, "protocol": "TCP"}],
            "resources": _resources(spec),
            "securityContext": container_security_context(),
            "volumeMounts": [
                {"name": "config", "mountPath": SCHEMA_MOUNT, "readOnly": True},
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "model", "mountPath": MODEL_DIR},
                {"name": "output", "mountPath": OUTPUT_DIR},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": spec.schema_config_map}},
            # DataLoader workers and NCCL share memory through /dev/shm; the runtime's default is 64 MiB.
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
            {"name": "model", "emptyDir": {}},
            {"name": "output", "emptyDir": {}},
            # The root filesystem is read-only: scratch files and caches (HOME is /tmp) go here.
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    selector = spec.effective_node_selector()
    if selector:
        pod["nodeSelector"] = selector
    if spec.gpus_per_node > 0:
        pod["tolerations"] = gpu_tolerations()
    return {
        "metadata": {
            "labels": spec.common_labels(),
            "annotations": {
                # Scale-down must not evict a rank: the whole run would fail.
                "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
                "kubectl.kubernetes.io/default-container": CONTAINER_NAME,
            },
        },
        "spec": pod,
    }


def _job_spec(spec: TrainingJobSpec) -> dict[str, Any]:
    return {
        "completionMode": "Indexed",
        "completions": spec.nodes,
        "parallelism": spec.nodes,
        "backoffLimit": spec.backoff_limit,
        # A replacement pod takes the same hostname; create it only once the old one is gone.
        "podReplacementPolicy": "Failed",
        "activeDeadlineSeconds": spec.max_runtime_seconds,
        "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
        "template": _pod_template(spec),
    }


def job(spec: TrainingJobSpec, *, name: str) -> Manifest:
    """One training run: an Indexed Job of `spec.nodes` pods (name it with `job_name`)."""
    if not is_dns_label(name, limit=MAX_JOB_NAME):
        raise ValueError(
            f"job name {name!r}: a DNS label of at most {MAX_JOB_NAME} characters (pods are named host "
            f"'<job>-<index>', at most 63); use job_name()"
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": spec.common_labels(), "annotations": checkov_annotations(spec)},
        "spec": _job_spec(spec),
    }


CRON_TIME_ZONE = "Etc/UTC"
CRON_STARTING_DEADLINE_SECONDS = 3600
"""A run whose slot the controller missed (restart, upgrade, previous run still going) starts up to an hour late."""


def cron_job(spec: TrainingJobSpec, *, schedule: str) -> Manifest:
    """Scheduled runs: a CronJob (UTC, never two runs at once) whose Jobs are exactly `job`'s spec."""
    if len(schedule.split()) != 5 or "TZ=" in schedule:
        raise ValueError(
            f"schedule {schedule!r}: a 5-field Kubernetes cron expression in UTC (convert EventBridge "
            "expressions with cron_for_kubernetes)"
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cron_job_name(spec.model), "namespace": spec.namespace, "labels": spec.common_labels(),
            "annotations": checkov_annotations(spec),
        },
        "spec": {
            "schedule": schedule,
            "timeZone": CRON_TIME_ZONE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": CRON_STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": spec.common_labels()}, "spec": _job_spec(spec)},
        },
    }
