"""The rendered Job's exact command, args and env, run as local processes the way Kubernetes runs them.

For each index the test does what the Job controller and the kubelet do with the pod template and
nothing else: the controller labels the pod with the Job's name and adds JOB_COMPLETION_INDEX; the
kubelet resolves the downward API, expands `$(VAR)` references, materialises the ConfigMap and
emptyDir volumes and starts the container's command. Two things a single host cannot reproduce are
replaced, and said so where it happens: cluster DNS (rank 0's name resolves to 127.0.0.1) and the
container's mount namespace (a mount path in an argument becomes the local directory behind it).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_training.artifact import load_artifact
from mlops_training.synthetic import schema_document, write_dataset
from specs.k8s import training_job

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

MODEL = "fraud-detection"
JOB = "fraud-detection-20260115-030405"
N_ROWS = 1600
# One thread per process (the spec's cpu "1"): reproducible, and kind to 2 shared cores.
HYPERPARAMETERS = {"epochs": "3", "batch_size": "64", "learning_rate": "0.003", "checkpoint_every_steps": "10"}
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


# --------------------------------------------------------------------------------------------
# The kubelet's $(VAR) expansion (k8s.io/kubernetes third_party/forked/golang/expansion)


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """`$(VAR)` becomes VAR's value when VAR is defined and stays as written otherwise; `$$` is a
    literal `$`; any other `$` (a `$` before another character, an unclosed `$(`) is kept."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                out.append(mapping[name] if name in mapping else f"$({name})")
                i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x-$(A)-$(B)", "x-1-two"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("cost: $5", "cost: $5"),
        ("$(A", "$(A"),
        ("trailing $", "trailing $"),
        ("$()", "$()"),
        ("$(A)$(A)", "11"),
        ('{"v": "$(B)"}', '{"v": "two"}'),
    ],
)
def test_expand_follows_the_kubelets_rules(text, expected):
    assert expand(text, {"A": "1", "B": "two"}) == expected


def test_expand_does_not_expand_a_value_it_inserted():
    assert expand("$(A)", {"A": "$(B)", "B": "no"}) == "$(B)"


# --------------------------------------------------------------------------------------------
# One pod of the Indexed Job, as the Job controller creates it and the kubelet starts it


@dataclass(frozen=True)
class Pod:
    argv: list[str]
    env: dict[str, str]
    volumes: dict[str, Path]
    """Volume name -> the local directory standing for it."""


def _field_ref(path: str, metadata: Mapping[str, Any]) -> str:
    for kind in ("labels", "annotations"):
        prefix = f"metadata.{kind}['"
        if path.startswith(prefix) and path.endswith("']"):
            return metadata[kind][path[len(prefix):-2]]
    if path == "metadata.name":
        return metadata["name"]
    raise AssertionError(f"this simulation resolves no downward API field {path!r}")


def start_pod(job: dict[str, Any], *, index: int, root: Path, configmaps: Mapping[str, dict[str, str]],
              hosts: Mapping[str, str]) -> Pod:
    """The command line and environment of pod `index` of `job`, with its volumes under `root`."""
    template = job["spec"]["template"]
    name = job["metadata"]["name"]
    (container,) = template["spec"]["containers"]

    # The Job controller: labels and the completion index annotation, plus JOB_COMPLETION_INDEX.
    metadata = {
        "name": f"{name}-{index}-abcde",
        "labels": {**template["metadata"]["labels"], training_job.JOB_NAME_LABEL: name, "job-name": name,
                   "batch.kubernetes.io/job-completion-index": str(index)},
        "annotations": {**template["metadata"].get("annotations", {}), "batch.kubernetes.io/job-completion-index": str(index)},
    }
    env_entries = [*container["env"], {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]

    # The kubelet: each env value is expanded with the entries before it; the downward API is read.
    env: dict[str, str] = {}
    for entry in env_entries:
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
        else:
            env[entry["name"]] = _field_ref(entry["valueFrom"]["fieldRef"]["fieldPath"], metadata)

    # Cluster DNS would resolve `<job>-0.<service>` to rank 0's pod IP; here every pod is this host.
    # The name must be one the Service publishes, which `hosts` spells out.
    env["MASTER_ADDR"] = hosts[env["MASTER_ADDR"]]

    # Volumes: ConfigMaps are written out as files, emptyDirs start empty (one per pod).
    volumes: dict[str, Path] = {}
    for volume in template["spec"]["volumes"]:
        local = root / f"pod-{index}" / volume["name"]
        local.mkdir(parents=True)
        if "configMap" in volume:
            for key, content in configmaps[volume["configMap"]["name"]].items():
                (local / key).write_text(content, encoding="utf-8")
        else:
            assert set(volume) == {"name", "emptyDir"}, volume
        volumes[volume["name"]] = local
    # The pod's /tmp volume holds scratch files only and no argument names it; this test's own files
    # (the data the arguments name) live under the host's /tmp, so /tmp is not remapped.
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"] if mount["mountPath"] != "/tmp"}

    def mounted(arg: str) -> str:
        # The container sees a volume at its mountPath; a process here sees the local directory.
        for path, local in mounts.items():
            if arg == path or arg.startswith(path + "/"):
                return str(local) + arg[len(path):]
        return arg

    command = [expand(part, env) for part in container["command"]]
    args = [mounted(expand(arg, env)) for arg in container["args"]]
    # torchrun is `python -m torch.distributed.run`; this interpreter has the training package.
    assert command == ["torchrun"]
    return Pod(argv=[sys.executable, "-m", "torch.distributed.run", *args], env=env, volumes=volumes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(pod_env: Mapping[str, str]) -> dict[str, str]:
    """This interpreter's environment (standing for the image's) without any run's variables, plus the pod's."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SM_", "MLOPS_", "AWS_")) and k not in TORCHRUN_VARIABLES}
    return {**base, "PYTHONUNBUFFERED": "1", **pod_env}


@pytest.mark.slow
def test_the_rendered_job_trains_across_two_pods_and_rank_0_writes_the_artifact(tmp_path: Path):
    write_dataset(tmp_path / "data", n_rows=N_ROWS, task="binary_classification", seed=7, n_files=2)
    checkpoints = tmp_path / "checkpoints" / MODEL
    spec = training_job.TrainingJobSpec(
        namespace="t-dev", model=MODEL, service_account="training", image="training:test",
        nodes=2, gpus_per_node=1, cpu="1", memory="4Gi", priority_class="t-dev-training-normal",
        region="eu-west-1",
        # The offline store and the checkpoint prefix are S3 in the cluster; local paths here.
        train_uri=str(tmp_path / "data"), checkpoint_uri=str(checkpoints),
        schema_config_map=training_job.schema_config_map_name(MODEL), hyperparameters=HYPERPARAMETERS,
        max_runtime_seconds=3600, master_port=free_port(),
    )
    job = training_job.job(spec, name=JOB)
    configmap = training_job.feature_schema_config_map(spec, schema_document("binary_classification"))
    hosts = {f"{JOB}-0.{training_job.headless_service(spec)['metadata']['name']}": "127.0.0.1"}
    pods = [
        start_pod(job, index=i, root=tmp_path, configmaps={configmap["metadata"]["name"]: configmap["data"]}, hosts=hosts)
        for i in range(spec.nodes)
    ]

    processes = [
        subprocess.Popen(pod.argv, env=process_env(pod.env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for pod in pods
    ]
    logs = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=300)
            logs.append(out)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for index, (process, log) in enumerate(zip(processes, logs)):
        assert process.returncode == 0, f"pod {index} exited {process.returncode}:\n{log[-5000:]}"

    pod0, pod1 = logs
    assert "rank0 INFO mlops_training: process group up: backend=gloo rank=0 world_size=2" in pod0
    assert "rank1 INFO mlops_training: process group up: backend=gloo rank=1 world_size=2" in pod1
    # 1600 rows, 20 % held out: 1280 / 2 ranks = 640 rows = 10 steps of 64 per epoch, 3 epochs.
    assert "rank1 INFO mlops_training: trained: global_step=30" in pod1
    assert "rank0 INFO mlops_training: validation" in pod0
    assert "rank1 INFO mlops_training: validation" not in pod1  # only rank 0 evaluates

    artifact = load_artifact(pods[0].volumes["model"])
    # The per-run model_version is the Job's name, read through the downward API and $(JOB_NAME).
    assert artifact.metadata["model_version"] == JOB
    assert artifact.metadata["model_name"] == MODEL
    assert artifact.metadata["hyperparameters"]["epochs"] == 3
    assert artifact.metadata["hyperparameters"]["num_threads"] == 1
    assert list(pods[1].volumes["model"].iterdir()) == []  # only rank 0 writes the artifact
    assert (pods[0].volumes["output"] / "data" / "metrics.json").exists()
    assert sorted(p.name for p in (checkpoints / JOB).glob("checkpoint-*.pt"))  # under <checkpoint_uri>/<job>
