"""`mlops train --stack S`: start one training run of a model, where the stack trains.

Kind "eks": render the model's Indexed Job from the same template the stack's CronJob uses
(specs.k8s.training_job) and submit it with the Kubernetes client. Kind "sagemaker": start the
model's retraining pipeline (StartPipelineExecution). Either way the run trains on the feature
group's offline store, uploads its artifact and registers a new version in the model's group.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from components import training_cluster
from components.tracking import ARN_OUTPUT
from specs import tracking
from specs.config.schema import StackConfig
from components.stack import namer_for, stack_image, training_hyperparameters
from specs.k8s import training_job
from specs.pipelines.retraining import TRIGGER_PARAMETER


class TrainError(Exception):
    """A run that cannot be started because of the stack's or the environment's state (no feature
    group, no kubeconfig, the API server refused), with what to do about it. The CLI exits 2."""


class TrainUsageError(TrainError):
    """An argument that names nothing (an unknown model, none given where several exist). The CLI exits 64."""


@dataclass(frozen=True)
class Submitted:
    """A started run."""

    kind: str
    """"eks" or "sagemaker"."""
    name: str
    """Job name, or pipeline execution ARN."""
    namespace: str | None = None
    manifest: dict[str, Any] | None = None


def pick_model(config: StackConfig, model: str | None) -> str:
    models = list(config.model_registry.models)
    if model is None:
        if len(models) != 1:
            raise TrainUsageError(f"stack {config.stack_name} has {len(models)} models ({', '.join(models) or 'none'}); name one with --model")
        return models[0]
    if model not in models:
        raise TrainUsageError(f"unknown model {model!r} in {config.stack_name}; defined: {', '.join(models) or 'none'}")
    return model


def feature_group_name(config: StackConfig, model: str) -> str:
    return namer_for(config).feature_group(config.model_registry.models[model].feature_group)


def offline_store_placeholder(config: StackConfig, model: str) -> str:
    """What a dry run shows for the offline store's URI, which only AWS knows (it resolves the prefix)."""
    from mlops.dry_run import unresolved

    return unresolved(f"DescribeFeatureGroup(FeatureGroupName={feature_group_name(config, model)}).OfflineStoreConfig.S3StorageConfig.ResolvedOutputS3Uri")


def offline_store_uri(config: StackConfig, model: str, *, sagemaker: Any) -> str:
    """Where Feature Store exports the model's feature group (AWS resolves the prefix at creation)."""
    group = feature_group_name(config, model)
    from botocore.exceptions import ClientError

    try:
        described = sagemaker.describe_feature_group(FeatureGroupName=group)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
            raise
        raise TrainError(f"feature group {group} does not exist; run `pulumi up -s {config.stack_name}` first") from None
    storage = (described.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}
    uri = storage.get("ResolvedOutputS3Uri") or storage.get("S3Uri")
    if not uri:
        raise TrainError(f"feature group {group} has no offline store; training reads the offline store")
    return uri


def job_spec(config: StackConfig, model: str, *, train_uri: str, tracking_uri: str | None = None) -> training_job.TrainingJobSpec:
    """The model's Job template with every value resolved: the one the stack's CronJob uses
    (`tracking_uri`: see `tracking_server_arn`)."""
    eks = config.training.eks
    if config.training.kind != "eks" or eks is None:
        raise TrainError(f"stack {config.stack_name} trains with kind {config.training.kind!r}, not on EKS")
    namer = namer_for(config)
    return training_cluster.job_spec(
        namer=namer, region=config.aws.region, eks=eks, model=model,
        training_image=stack_image(config, "training"),
        train_uri=train_uri,
        hyperparameters=training_hyperparameters(config, model),
        artifacts_bucket=namer.bucket("artifacts"),
        max_runtime_seconds=config.training.max_runtime_hours * 3600,
        tracking_uri=tracking_uri,
    )


def tracking_server_arn(config: StackConfig) -> str | None:
    """The MLflow tracking server the stack's runs log to: None without `tracking.enabled`; the ARN of the
    stack's own server (known from its name); with `shared_stack`, that stack's `mlflowTrackingServerArn`
    output, read with `pulumi stack output` (the Pulumi CLI and the state backend's credentials)."""
    if not config.tracking.enabled:
        return None
    if config.tracking.shared_stack is None:
        return tracking.server_arn(prefix=namer_for(config).prefix, region=config.aws.region, account_id=config.aws.account_id)
    import subprocess

    owner = config.tracking.shared_stack
    try:
        out = subprocess.run(["pulumi", "stack", "output", "--stack", owner, "--json", ARN_OUTPUT],
                             capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise TrainError(f"tracking.shared_stack is {owner!r}: reading its {ARN_OUTPUT} output needs the Pulumi CLI on PATH") from None
    if out.returncode != 0:
        raise TrainError(f"could not read {ARN_OUTPUT} of stack {owner} (tracking.shared_stack): {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def render_job(config: StackConfig, model: str, *, train_uri: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The Job one run submits."""
    spec = job_spec(config, model, train_uri=train_uri, tracking_uri=tracking_server_arn(config))
    return training_job.job(spec, name=training_job.job_name(model, now=now or dt.datetime.now(dt.timezone.utc)))


def submit_job(job: dict[str, Any], *, api_client: Any) -> Submitted:
    """Create the Job with the Kubernetes client (`api_client`: a configured kubernetes.client.ApiClient)."""
    from kubernetes import client

    namespace = job["metadata"]["namespace"]
    try:
        created = client.BatchV1Api(api_client).create_namespaced_job(namespace=namespace, body=job)
    except client.ApiException as exc:
        hint = {
            403: "your Kubernetes identity may not create Jobs there (EKS access entries / RBAC)",
            404: f"namespace {namespace} does not exist; run `pulumi up` for the stack first",
            409: "a Job of that name exists; retry in a second",
        }.get(exc.status, "")
        raise TrainError(f"the API server refused the Job: {exc.status} {exc.reason}" + (f"; {hint}" if hint else "")) from None
    return Submitted(kind="eks", name=created.metadata.name, namespace=namespace, manifest=job)


def kube_client(*, config_file: Any = None, context: str | None = None) -> Any:
    """A Kubernetes ApiClient from a kubeconfig (`aws eks update-kubeconfig` writes one; the stack
    exports `kubeconfig` too)."""
    from kubernetes import config as kube_config

    try:
        return kube_config.new_client_from_config(config_file=str(config_file) if config_file else None, context=context)
    except (kube_config.ConfigException, FileNotFoundError) as exc:
        raise TrainError(
            f"no usable kubeconfig ({exc}); write one with `aws eks update-kubeconfig --name <cluster>` "
            "or `pulumi stack output kubeconfig --show-secrets > kubeconfig`, then pass --kubeconfig"
        ) from None


def pipeline_name(config: StackConfig, model: str) -> str:
    return namer_for(config).pipeline(model)


def pipeline_request(config: StackConfig, model: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """StartPipelineExecution's parameters for one manual run of the model's pipeline."""
    return {
        "PipelineName": pipeline_name(config, model),
        "PipelineExecutionDisplayName": f"manual-{now or dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}",
        "PipelineParameters": [{"Name": TRIGGER_PARAMETER, "Value": "manual"}],
    }


def start_pipeline(config: StackConfig, model: str, *, sagemaker: Any) -> Submitted:
    """Kind "sagemaker": start the model's retraining pipeline, as its schedule would."""
    from botocore.exceptions import ClientError

    request = pipeline_request(config, model)
    name = request["PipelineName"]
    try:
        started = sagemaker.start_pipeline_execution(**request)
    except ClientError as exc:
        # AWS answers ResourceNotFound for an unknown pipeline (moto a ValidationException).
        raise TrainError(
            f"could not start pipeline {name}: {exc.response.get('Error', {}).get('Message', exc)}; "
            f"`pulumi up -s {config.stack_name}` creates it for every model with a drift alarm or a training.schedule"
        ) from None
    return Submitted(kind="sagemaker", name=started["PipelineExecutionArn"])
