"""Every Kubernetes object of EKS training, rendered as plain dicts (apiVersion, kind, metadata, spec).

Pure: no Pulumi and no cluster. `components.training_cluster` passes these dicts to
pulumi-kubernetes resources; `mlops train` submits `job(...)` with the Kubernetes Python client.
Fields documented as *opaque* (ARNs, S3 URIs, hyperparameter values) may be Pulumi Outputs: they
are only placed into the dicts, never formatted, joined or inspected. Where a string must combine
an opaque value with something else (the checkpoint prefix plus the run's name, the hyperparameters
JSON) the opaque value travels in an environment variable and Kubernetes joins it at run time with
its `$(VAR)` expansion of container env and args.

One training run is an Indexed Job: `nodes` pods, pod i running
`torchrun --node-rank=i --master-addr=<job>-0.<service>` over its GPUs. A headless Service gives
each pod the DNS name `<job>-<index>.<service>`, so rank 0's address is known before it exists.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from components import iam  # layout: specs.iam after merge

Manifest = dict[str, Any]

# --------------------------------------------------------------------------------------------
# The GPU pool: one taint and one label, used by the node group, the tolerations and the selectors

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


# --------------------------------------------------------------------------------------------
# Names

MODEL_LABEL = "mlops.dev/model"
COMPONENT_LABEL = "mlops.dev/component"
TEAM_LABEL = "mlops.dev/team"
ENVIRONMENT_LABEL = "mlops.dev/environment"
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
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

SCHEMA_MOUNT = "/opt/ml/input/data/config"
SCHEMA_FILE = "feature_schema.json"
MODEL_DIR = "/opt/ml/model"
OUTPUT_DIR = "/opt/ml/output"
CONTAINER_NAME = "train"
RUN_AS_USER = 1000
"""The `mlops` user (uid and gid 1000) that training/Dockerfile creates and runs as."""


def _truncate(text: str, limit: int) -> str:
    return text[:limit].rstrip("-")


def is_dns_label(name: str, *, limit: int = 63) -> bool:
    """A DNS-1123 label (lowercase alphanumerics and '-', alphanumeric at both ends) of at most `limit` characters."""
    return 0 < len(name) <= limit and bool(_DNS_LABEL.match(name))


def job_name(model: str, *, now: datetime) -> str:
    """A one-off run's Job name: `<model>-<UTC yyyymmdd-hhmmss>`, at most MAX_JOB_NAME characters
    (the model part is shortened when needed), so that `<job>-<index>` is a valid hostname."""
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime (e.g. datetime.now(timezone.utc))")
    stamp = now.astimezone(timezone.utc).strftime(_TIMESTAMP)
    return f"{_truncate(model, MAX_JOB_NAME - len(stamp) - 1)}-{stamp}"


def cron_job_name(model: str) -> str:
    """The scheduled runs' CronJob: the model's name, shortened to MAX_CRON_JOB_NAME characters."""
    return _truncate(model, MAX_CRON_JOB_NAME)


def rendezvous_service_name(model: str) -> str:
    """The headless Service whose DNS names (`<job>-<index>.<service>`) the model's pods find rank 0 by."""
    return f"{_truncate(model, 63 - len('-rdzv'))}-rdzv"


def schema_config_map_name(model: str) -> str:
    """The ConfigMap holding the model's feature_schema.json."""
    return f"{model}-feature-schema"


# --------------------------------------------------------------------------------------------
# Validation helpers (collect every problem, then raise one ValueError)

_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _raise(kind: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"invalid {kind}:\n  - " + "\n  - ".join(problems))


def _check_labels(where: str, labels: Mapping[str, str], problems: list[str]) -> None:
    for key, value in labels.items():
        if len(key.rsplit("/", 1)[-1]) > 63 or not _LABEL_KEY.match(key):
            problems.append(f"{where} key {key!r} is not a Kubernetes label key (optional DNS prefix '/', then a name of at most 63 characters)")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"{where}[{key!r}]={value!r}: a label value is at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends")


def _check_namespace(namespace: str, problems: list[str]) -> None:
    if not is_dns_label(namespace):
        problems.append(f"namespace={namespace!r}: a DNS label of at most 63 lowercase letters, digits and '-'")


def _check_integer(spec: Any, name: str, problems: list[str], low: int, high: int | None = None) -> None:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        problems.append(f"{name}={value!r}: an integer >= {low}" + (f" and <= {high}" if high is not None else ""))


def _cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


# --------------------------------------------------------------------------------------------
# The team's namespace

PRIORITIES: dict[str, int] = {"low": 1000, "normal": 10000, "high": 100000}
"""PriorityClass values per level, the same for every team, so a level means the same on a shared cluster
(naming another team's class gains nothing). System classes are 2e9 and above: every run yields to add-ons."""
_PRIORITY_DESCRIPTIONS = {
    "low": "Training runs that wait for free GPUs and never preempt other pods.",
    "normal": "Training runs that may preempt low-priority runs (of any team: preemption is cluster-wide).",
    "high": "Urgent training runs; they may preempt normal and low runs of any team.",
}
PSA_LEVEL = "restricted"
"""Pod Security Admission level enforced on the team's namespace; the training pods satisfy it."""
QUOTA_NAME = "training-quota"
LIMIT_RANGE_NAME = "training-limits"


@dataclass(frozen=True, kw_only=True)
class TeamNamespaceSpec:
    """A team's namespace on a training cluster: its quota, limits, priorities and identity."""

    namespace: str
    """The namespace's name (a DNS label)."""
    team: str
    """The team's slug (label `mlops.dev/team`)."""
    environment: str
    """local, dev, staging or prod (label `mlops.dev/environment`)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object of the namespace and on the namespace itself. @default none."""
    gpu_quota: int
    """`requests.nvidia.com/gpu` of all the namespace's pods together."""
    cpu_quota: str
    """`requests.cpu` of all pods together, a Kubernetes quantity (e.g. "64")."""
    memory_quota: str
    """`requests.memory` and `limits.memory` of all pods together (e.g. "256Gi")."""
    max_pods: int
    """Pods that may exist at once (non-terminal)."""
    service_account: str = "training"
    """The service account training pods run as. @default "training"."""
    role_arn: Any
    """Opaque: the IAM role the service account's pods assume through IRSA."""
    default_cpu: str = "1"
    """LimitRange: CPU request and limit of a container that sets none. @default "1"."""
    default_memory: str = "2Gi"
    """LimitRange: memory request and limit of a container that sets none. @default "2Gi"."""
    max_cpu: str | None = None
    """LimitRange: the most CPU one container may set. @default none (the quota bounds it)."""
    max_memory: str | None = None
    """LimitRange: the most memory one container may set. @default none (the quota bounds it)."""
    max_gpus_per_pod: int = 8
    """LimitRange: the most GPUs one pod may request (the largest AWS GPU instances have 8). @default 8."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check_namespace(self.namespace, problems)
        if not is_dns_label(self.service_account, limit=253):
            problems.append(f"service_account={self.service_account!r}: lowercase letters, digits and '-'")
        for name in ("gpu_quota", "max_pods", "max_gpus_per_pod"):
            _check_integer(self, name, problems, 0)
        for name in ("cpu_quota", "default_cpu", "max_cpu"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _CPU.match(value)):
                problems.append(f"{name}={value!r}: a CPU quantity such as '4', '0.5' or '500m'")
        for name in ("memory_quota", "default_memory", "max_memory"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _QUANTITY.match(value)):
                problems.append(f"{name}={value!r}: a memory quantity such as '256Gi' or '512Mi'")
        _check_labels("labels", self.common_labels(), problems)
        reserved = sorted(k for k in self.labels if k.startswith("pod-security.kubernetes.io/"))
        if reserved:
            problems.append(f"labels {', '.join(reserved)}: Pod Security Admission labels are set by the framework ({PSA_LEVEL})")
        _raise("TeamNamespaceSpec", problems)

    def common_labels(self) -> dict[str, str]:
        return {TEAM_LABEL: self.team, ENVIRONMENT_LABEL: self.environment, **self.labels}

    def metadata(self, name: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": self.common_labels()}


def namespace(spec: TeamNamespaceSpec) -> Manifest:
    """The namespace, with Pod Security Admission enforcing `restricted` (audit and warn too)."""
    psa = {}
    for mode in ("enforce", "audit", "warn"):
        psa[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        psa[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": {**spec.common_labels(), **psa}},
    }


def resource_quota(spec: TeamNamespaceSpec) -> Manifest:
    """What the namespace's pods may request together. Extended resources such as GPUs take only the
    `requests.` prefix in a quota (Kubernetes does not overcommit them, so requests == limits)."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": spec.metadata(QUOTA_NAME),
        "spec": {
            "hard": {
                f"requests.{GPU_RESOURCE}": str(spec.gpu_quota),
                "requests.cpu": spec.cpu_quota,
                "requests.memory": spec.memory_quota,
                # Memory limits are what a node can actually be asked to hold; CPU limits only throttle.
                "limits.memory": spec.memory_quota,
                "pods": str(spec.max_pods),
            }
        },
    }


def limit_range(spec: TeamNamespaceSpec) -> Manifest:
    """Container defaults (so that pods without resources still count against the quota) and maxima.

    GPUs: the LimitRanger admission plugin accepts extended resources, but a `max` makes every
    container without a limit for that resource fail admission ("No limit is specified"). So every
    container defaults to 0 GPUs (the scheduler skips zero requests of extended resources), and the
    GPU maximum is per Pod: the sum over its containers.
    """
    default = {"cpu": spec.default_cpu, "memory": spec.default_memory, GPU_RESOURCE: "0"}
    container: dict[str, Any] = {"type": "Container", "default": dict(default), "defaultRequest": dict(default)}
    container_max = {k: v for k, v in (("cpu", spec.max_cpu), ("memory", spec.max_memory)) if v is not None}
    if container_max:
        container["max"] = container_max
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": spec.metadata(LIMIT_RANGE_NAME),
        "spec": {"limits": [container, {"type": "Pod", "max": {GPU_RESOURCE: str(spec.max_gpus_per_pod)}}]},
    }


def priority_class_name(namespace: str, priority: str) -> str:
    """`<namespace>-training-<priority>`: PriorityClasses are cluster-scoped, so the name carries the namespace."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority {priority!r}; allowed: {', '.join(PRIORITIES)}")
    return f"{namespace}-training-{priority}"


def priority_classes(spec: TeamNamespaceSpec) -> list[Manifest]:
    """Low, normal and high priority for the team's runs; low never preempts, none is the cluster default."""
    classes = []
    for level, value in PRIORITIES.items():
        obj: Manifest = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": priority_class_name(spec.namespace, level), "labels": spec.common_labels()},
            "value": value,
            "globalDefault": False,
            "preemptionPolicy": "Never" if level == "low" else "PreemptLowerPriority",
            "description": f"{_PRIORITY_DESCRIPTIONS[level]} (namespace {spec.namespace})",
        }
        classes.append(obj)
    return classes


def service_account(spec: TeamNamespaceSpec) -> Manifest:
    """The training pods' identity, bound to an IAM role through IRSA.

    No Kubernetes API token is mounted: training never calls the Kubernetes API, and the EKS pod
    identity webhook projects its own STS-audience token (volume `aws-iam-token`) whatever this
    setting says.
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {**spec.metadata(spec.service_account), "annotations": {"eks.amazonaws.com/role-arn": spec.role_arn}},
        "automountServiceAccountToken": False,
    }


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
    """The team's namespace (see TeamNamespaceSpec)."""
    model: str
    """The model's slug (key under model_registry.models)."""
    service_account: str
    """The IRSA service account the pods run as (see `service_account`)."""
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
    """One of the team's PriorityClasses (see `priority_class_name`)."""
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

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check_namespace(self.namespace, problems)
        if not (isinstance(self.model, str) and _SLUG.match(self.model) and len(self.model) <= 63):
            problems.append(f"model={self.model!r}: a slug (lowercase letters, digits, single '-', starting with a letter) of at most 63 characters")
        if not is_dns_label(self.schema_config_map, limit=253):
            problems.append(f"schema_config_map={self.schema_config_map!r}: lowercase letters, digits and '-'")
        _check_integer(self, "nodes", problems, 1, MAX_NODES)
        for name, low in (("gpus_per_node", 0), ("procs_per_node", 1), ("max_runtime_seconds", 1), ("backoff_limit", 0),
                          ("ttl_seconds_after_finished", 0), ("rendezvous_timeout_seconds", 1)):
            _check_integer(self, name, problems, low)
        _check_integer(self, "master_port", problems, 1, 65535)
        if not (isinstance(self.cpu, str) and _CPU.match(self.cpu)) or _cpu_cores(self.cpu) <= 0:
            problems.append(f"cpu={self.cpu!r}: a CPU quantity above 0 such as '4', '0.5' or '500m'")
        if not (isinstance(self.memory, str) and _QUANTITY.match(self.memory)):
            problems.append(f"memory={self.memory!r}: a memory quantity such as '12Gi'")
        if isinstance(self.gpus_per_node, int) and self.gpus_per_node > 0 and self.procs_per_node != 1:
            problems.append(f"procs_per_node={self.procs_per_node!r}: applies to CPU pods only (with GPUs, one process runs per GPU)")
        _check_labels("labels", self.labels, problems)
        if self.node_selector is not None:
            _check_labels("node_selector", self.node_selector, problems)
        problems.extend(_hyperparameter_problems(self.hyperparameters))
        _raise("TrainingJobSpec", problems)

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
        return max(1, math.floor(_cpu_cores(self.cpu) / self.procs))

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
        # OpenMP/MKL pools; torchrun would otherwise force 1 thread when it starts several processes.
        {"name": "OMP_NUM_THREADS", "value": str(spec.threads_per_process())},
        {"name": "MLOPS_TRAIN_URI", "value": spec.train_uri},
        {"name": "MLOPS_CHECKPOINT_URI", "value": spec.checkpoint_uri},
    ]
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
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}


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
            "imagePullPolicy": "IfNotPresent",
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
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": spec.schema_config_map}},
            # DataLoader workers and NCCL share memory through /dev/shm; the runtime's default is 64 MiB.
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
            {"name": "model", "emptyDir": {}},
            {"name": "output", "emptyDir": {}},
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
        "metadata": {"name": name, "namespace": spec.namespace, "labels": spec.common_labels()},
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
        "metadata": {"name": cron_job_name(spec.model), "namespace": spec.namespace, "labels": spec.common_labels()},
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


# --------------------------------------------------------------------------------------------
# EventBridge Scheduler expressions -> Kubernetes cron

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names numbered from lowest, whether '/' steps are allowed)
_CRON_FIELDS = (
    ("minutes", 0, 59, (), True),
    ("hours", 0, 23, (), True),
    ("day-of-month", 1, 31, (), True),
    ("month", 1, 12, _MONTHS, True),
    ("day-of-week", 1, 7, _DAYS, False),
)
_ITEM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(-[A-Za-z0-9]+)?)(/(?P<step>\d+))?$")


def _cron_value(token: str, *, name: str, low: int, high: int, names: tuple[str, ...], expression: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token.upper() in names:
        value = low + names.index(token.upper())
    else:
        allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
        raise ValueError(f"schedule {expression!r}: {name} value {token!r}; allowed: {allowed}")
    if not low <= value <= high:
        raise ValueError(f"schedule {expression!r}: {name} value {token!r} is outside {low}-{high}")
    return value


def _cron_field(text: str, *, index: int, expression: str) -> str:
    name, low, high, names, steps = _CRON_FIELDS[index]
    if text == "?":
        return "*"
    items = []
    for item in text.split(","):
        for part in re.split(r"[-/]", item):
            if part == "*" or part.isdigit() or part.upper() in names:
                continue
            for special, meaning in (("#", "nth weekday of the month"), ("L", "last"), ("W", "nearest weekday")):
                if special in part.upper():
                    raise ValueError(
                        f"schedule {expression!r}: {name} {text!r} uses '{special}' ({meaning}), which Kubernetes "
                        "cron does not support; allowed: numbers, names, '*', ',', '-' and '/'"
                    )
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"schedule {expression!r}: {name} {text!r} is not a cron field ({item!r})")
        if match["step"] is not None:
            if not steps:
                raise ValueError(f"schedule {expression!r}: {name} {text!r}: EventBridge allows no '/' step in {name}")
            if int(match["step"]) < 1:
                raise ValueError(f"schedule {expression!r}: {name} {text!r}: a step must be at least 1")
        if match["range"] == "*":
            items.append(item)
            continue
        bounds = match["range"].split("-")
        values = [_cron_value(b, name=name, low=low, high=high, names=names, expression=expression) for b in bounds]
        if len(values) == 2 and values[0] > values[1]:
            raise ValueError(
                f"schedule {expression!r}: {name} range {match['range']!r} runs backwards; Kubernetes cron needs start <= end"
            )
        if name == "day-of-week":
            # EventBridge numbers days 1-7 from Sunday, Kubernetes 0-6 from Sunday; names mean the same.
            bounds = [str(int(b) - 1) if b.isdigit() else b for b in bounds]
        items.append("-".join(bounds) + (f"/{match['step']}" if match["step"] is not None else ""))
    return ",".join(items)


def _rate(amount: int, *, unit: str, expression: str) -> str:
    minutes = amount * {"minute": 1, "hour": 60, "day": 1440}[unit]
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 1440 % minutes == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    if minutes == 7 * 1440:
        return "0 0 * * 0"
    raise ValueError(
        f"schedule {expression!r}: a period of {amount} {unit}(s) has no exact Kubernetes cron equivalent "
        "(cron repeats within the hour, the day or the week); allowed: minutes dividing 60, hours dividing 24, "
        "1 day or 7 days, or a cron(...) expression"
    )


def cron_for_kubernetes(expression: str) -> str:
    """Convert an EventBridge Scheduler expression to a 5-field Kubernetes cron (UTC).

    `cron(min hour day-of-month month day-of-week year)`: '?' becomes '*', day-of-week numbers 1-7
    (Sunday = 1) become 0-6, names pass unchanged; the year must be '*'; L, W and # have no
    Kubernetes equivalent. `rate(N unit)` keeps its period where cron can express it exactly (its
    phase is then the clock's: rate(1 hour) runs on the hour, not N minutes after creation).
    """
    text = expression.strip()
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", text)
    if rate:
        amount = int(rate[1])
        if amount < 1:
            raise ValueError(f"schedule {expression!r}: the rate must be at least 1")
        return _rate(amount, unit=rate[2].rstrip("s"), expression=expression)
    cron = re.fullmatch(r"cron\((.*)\)", text)
    if not cron:
        raise ValueError(f"schedule {expression!r}: expected cron(min hour day-of-month month day-of-week year) or rate(N minutes|hours|days)")
    fields = cron[1].split()
    if len(fields) != 6:
        raise ValueError(
            f"schedule {expression!r}: EventBridge cron takes 6 fields (minutes hours day-of-month month "
            f"day-of-week year), got {len(fields)}"
        )
    if fields[5] != "*":
        raise ValueError(f"schedule {expression!r}: year {fields[5]!r}; Kubernetes cron has no year field, allowed: '*'")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(
            f"schedule {expression!r}: EventBridge needs '?' in exactly one of day-of-month ({fields[2]!r}) and "
            f"day-of-week ({fields[4]!r})"
        )
    return " ".join(_cron_field(fields[i], index=i, expression=expression) for i in range(5))


# --------------------------------------------------------------------------------------------
# Cluster add-ons (clusters the stack creates)

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


CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_TAGS: dict[str, str] = {
    "1.28": "v1.28.6",
    "1.29": "v1.29.4",
    "1.30": "v1.30.2",
    "1.31": "v1.31.1",
    "1.32": "v1.32.7",
    "1.33": "v1.33.6",
    "1.34": "v1.34.5",
    "1.35": "v1.35.2",
    "1.36": "v1.36.1",
}
"""Pinned cluster-autoscaler releases per Kubernetes minor version (the autoscaler's minor must match the cluster's)."""
_CA_LABELS = {"k8s-addon": "cluster-autoscaler.addons.k8s.io", "k8s-app": "cluster-autoscaler"}


def _minor(kubernetes_version: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", kubernetes_version)
    if not match:
        raise ValueError(f"kubernetes_version {kubernetes_version!r}; allowed: '<major>.<minor>' such as '1.33'")
    return f"{match[1]}.{match[2]}"


def cluster_autoscaler_image(kubernetes_version: str, image_tag: str | None = None) -> str:
    """The autoscaler image for a cluster version: the pinned tag of its minor, or `image_tag` (same minor)."""
    minor = _minor(kubernetes_version)
    if image_tag is None:
        if minor not in CLUSTER_AUTOSCALER_TAGS:
            raise ValueError(
                f"no pinned cluster-autoscaler for Kubernetes {minor}; pinned: {', '.join(CLUSTER_AUTOSCALER_TAGS)} "
                f"(or pass image_tag='v{minor}.<patch>')"
            )
        image_tag = CLUSTER_AUTOSCALER_TAGS[minor]
    elif not re.fullmatch(rf"v{re.escape(minor)}\.\d+", image_tag):
        raise ValueError(f"cluster-autoscaler image_tag {image_tag!r} does not match Kubernetes {minor}; allowed: 'v{minor}.<patch>'")
    return f"{CLUSTER_AUTOSCALER_IMAGE}:{image_tag}"


def cluster_autoscaler_policy(cluster_name: str) -> iam.Document:
    """The autoscaler's IAM policy (its IRSA role): it reads every group (AWS grants Describe* on
    "*" only) and resizes only the Auto Scaling groups tagged as owned by this cluster."""
    return iam.document(
        iam.allow("DescribeScalingGroups", [
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
        ], ["*"]),
        iam.allow("DescribeClusterNodeGroups", ["eks:DescribeNodegroup"], [f"arn:aws:eks:*:*:nodegroup/{cluster_name}/*/*"]),
        iam.allow(
            "ScaleClusterNodeGroups",
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ["*"],
            {"StringEquals": {
                f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
            }},
        ),
    )


def _ca_meta(kind_namespaced: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cluster-autoscaler", "labels": dict(_CA_LABELS)}
    if kind_namespaced:
        meta["namespace"] = "kube-system"
    return meta


def cluster_autoscaler(
    *, cluster_name: str, region: str, role_arn: Any, kubernetes_version: str, image_tag: str | None = None,
) -> list[Manifest]:
    """The objects of upstream's cluster-autoscaler-autodiscover.yaml: a service account bound to
    `role_arn` (opaque, IRSA), RBAC and the Deployment, discovering this cluster's tagged groups."""
    image = cluster_autoscaler_image(kubernetes_version, image_tag)
    read = ["watch", "list", "get"]
    cluster_role_rules = [
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": ["cluster-autoscaler"], "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims", "persistentvolumes"], "verbs": read},
        {"apiGroups": ["extensions"], "resources": ["replicasets", "daemonsets"], "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["watch", "list"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets", "replicasets", "daemonsets"], "verbs": read},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"], "verbs": read},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resourceNames": ["cluster-autoscaler"], "resources": ["leases"], "verbs": ["get", "update"]},
    ]
    role_rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"], "verbs": ["delete", "get", "update", "watch"]},
    ]
    subject = [{"kind": "ServiceAccount", "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT, "namespace": "kube-system"}]
    app = {"app": "cluster-autoscaler"}
    command = [
        "./cluster-autoscaler",
        "--v=4",
        "--stderrthreshold=info",
        "--cloud-provider=aws",
        f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{cluster_name}",
        "--balance-similar-node-groups",
        "--expander=least-waste",
        "--skip-nodes-with-local-storage=false",
        "--skip-nodes-with-system-pods=false",
        # GPU nodes are expensive: remove an idle one after 10 minutes, but not right after adding it.
        "--scale-down-unneeded-time=10m",
        "--scale-down-delay-after-add=10m",
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**_ca_meta(True), "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        },
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _ca_meta(False), "rules": cluster_role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _ca_meta(True), "rules": role_rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _ca_meta(False),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-autoscaler"},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _ca_meta(True),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cluster-autoscaler"},
            "subjects": subject,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "cluster-autoscaler", "namespace": "kube-system", "labels": dict(app)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(app)},
                "template": {
                    "metadata": {
                        "labels": dict(app),
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8085"},
                    },
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "serviceAccountName": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
                        "containers": [{
                            "name": "cluster-autoscaler",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "env": [{"name": "AWS_REGION", "value": region}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "600Mi"},
                                "limits": {"cpu": "100m", "memory": "600Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                            },
                        }],
                    },
                },
            },
        },
    ]
