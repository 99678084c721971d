"""The retraining pipeline's definition, generated with the SageMaker Python SDK (v3): a `Pipeline`
(schema 2020-12-01) built under a `PipelineSession`, so every step's arguments are the SDK's own API request.

Steps, in order: Dataset (a point-in-time training set of the model's window, as of the run's start),
Train (the training container, its `train` channel the Dataset step's output), Evaluate (the candidate
against the champions of the stack's endpoints), Condition (the evaluation's decision), then Register
(the candidate into the team's Model Package Group, the evaluation attached) or Fail (the decision's
reason). specs.pipelines.steps builds all but Train; specs.pipelines.sources says what they read.
The Train step registers nothing: its hyperparameters carry no Model Package Group, so the container only
uploads its artifact; approval is decided by the Register step (`ModelConfig.approval`).

Parameters: `Trigger` (why a run started: "manual", "schedule" or "alarm") and `ShuffleLabels` ("false";
"true" is a drill: the Train step permutes the training labels, so the gates can be seen refusing a bad
candidate).

Generation is offline and deterministic, because Pulumi calls it inside an `apply` on every preview and
a changed document would update the pipeline on every `pulumi up`. The SDK, left to its defaults,
reaches AWS in these places; each is closed with a setting the SDK or boto3 offers (see `_offline_sdk`):
- importing `sagemaker.mlops` creates a client from boto3's default session
  (`sagemaker.ai_registry.air_hub.AIRHub`), which needs a region and walks the credential chain (IMDS);
- `ProcessingStep` builds a throwaway local-mode session from a fresh `boto3.Session()`, which needs a
  region from the environment (`AWS_DEFAULT_REGION`, set while generating);
- `ModelTrainer` validates its role with iam:SimulatePrincipalPolicy and iam:GetRole
  (`sagemaker.core.helper.iam_role_resolver.resolve_and_validate_role`);
- `ModelTrainer.train` sends telemetry (sts:GetCallerIdentity, then an HTTPS GET) on a thread.
Every S3 location is given explicitly, so the SDK never needs its default bucket nor uploads code.
The document is the SDK's, keys sorted; it carries the SDK's `"MlflowConfig": null`.

`components.retraining` deploys the document; `mlops train` starts it (TRIGGER_PARAMETER) and `mlops local`
runs it (mlops.local.pipeline_exec).

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: those three use this module, not the reverse;
tests/test_layout.py checks it).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from specs.config.schema import ModelConfig, Network, TrainingConfig  # layout: moves with config
from specs.pipelines import steps
from specs.pipelines.sources import RetrainingSources

DEFINITION_VERSION = "2020-12-01"
STEP_NAME = "Train"
TRIGGER_PARAMETER = "Trigger"
"""Records why a run started: "manual" (the default), "schedule" or "alarm"."""
SHUFFLE_PARAMETER = "ShuffleLabels"
"""A drill: "true" makes the Train step train on permuted labels (hyperparameter `shuffle_labels`), a
candidate the Evaluate step's gates must refuse. @default "false"."""
STEP_ORDER = (steps.DATASET_STEP, STEP_NAME, steps.EVALUATE_STEP, steps.CONDITION_STEP, steps.REGISTER_STEP, steps.FAIL_STEP)
REGISTRATION_HYPERPARAMETERS = ("model_package_group_name", "auto_approve")
"""Hyperparameters that make the training container register (and approve) what it trained; the
pipeline's Train step leaves them out: its Register step registers, after the evaluation."""
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
"""How the definition spells `ExecutionVariables.PIPELINE_EXECUTION_ID`, resolved by SageMaker Pipelines
when a run starts: each run's artifact gets its own S3 key (models/<model>/<execution id>/) instead of
overwriting the previous run's."""

SDK_CONFIG: dict[str, Any] = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
"""The SDK defaults config the generator runs with, in place of the machine's config files
(~/.config/sagemaker/config.yaml, SAGEMAKER_*_CONFIG_OVERRIDE, possibly on S3): they could add
defaults such as network isolation, tags or a VPC to the definition. Telemetry is off."""
_OFFLINE_CREDENTIALS = {"aws_access_key_id": "offline", "aws_secret_access_key": "offline"}
"""Static credentials, so that no provider in boto3's chain (IMDS, SSO, credential_process) runs.
Nothing is ever signed with them: generation sends no request."""
_VALIDATE_ROLE_ENV = "SAGEMAKER_VALIDATE_ROLE"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
"""The training job's environment variable naming the MLflow tracking server (issue #20)."""
_REGION_ENV = "AWS_DEFAULT_REGION"


def _generation_env(region: str) -> dict[str, str | None]:
    """Environment variables set (None: unset) while generating: role validation off, and a region and
    static credentials for the sessions the SDK makes with a bare `boto3.Session()`, so that none walks
    the credential chain (IMDS, STS web identity, SSO, a profile's credential_process)."""
    return {
        _VALIDATE_ROLE_ENV: "false",
        _REGION_ENV: region,
        "AWS_ACCESS_KEY_ID": _OFFLINE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": _OFFLINE_CREDENTIALS["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
    }
_lock = threading.Lock()


def schema_key(model: str) -> str:
    """Where the rendered feature_schema.json lives in the artifacts bucket."""
    return f"config/{model}/feature_schema.json"


def checkpoints_uri(artifacts_bucket: str, model: str) -> str:
    """Where the model's runs checkpoint in the artifacts bucket (SageMaker syncs there; EKS runs
    write a folder per Job below it). The pods' policy may prune `checkpoints/*` (specs.iam)."""
    return f"s3://{artifacts_bucket}/checkpoints/{model}"


def _hp(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def run_hyperparameters(
    *, model: str, spec: ModelConfig, training: TrainingConfig, artifacts_bucket: str, model_package_group: str, serving_image: str,
) -> dict[str, str]:
    """A training run's hyperparameters, every value a string as SageMaker sends them, except
    `model_version`, which each run adds (the pipeline: its execution id). They make the container
    upload its artifact and register the new version in the team's Model Package Group."""
    return {
        **{k: _hp(v) for k, v in training.hyperparameters.items()},
        "model_name": model,
        "artifact_s3_uri": f"s3://{artifacts_bucket}/models",
        "model_package_group_name": model_package_group,
        "auto_approve": _hp(spec.approval == "auto"),
        "image_uri": serving_image,
    }


@functools.cache
def _boto_session(region: str) -> Any:
    """One offline boto3 session per region: botocore then loads each service model once per process."""
    import boto3

    return boto3.Session(region_name=region, **_OFFLINE_CREDENTIALS)


@contextlib.contextmanager
def _offline_sdk(region: str) -> Iterator[Any]:
    """Process-wide settings the SDK reads, set only while generating and restored afterwards:
    boto3's default session (offline, with a region) for the import-time client, role validation
    off (`SAGEMAKER_VALIDATE_ROLE=false`, the resolver's documented switch; the role is a Pulumi
    output of this stack, not something to probe), a region and static credentials for the SDK's bare
    sessions (`_generation_env`), and the root logger as it was (importing the
    SDK runs `logging.basicConfig(level=INFO)`). Yields the boto3 session to generate with."""
    import boto3

    with _lock:
        default_session = boto3.DEFAULT_SESSION
        generation_env = _generation_env(region)
        saved_env = {name: os.environ.get(name) for name in generation_env}
        root = logging.getLogger()
        root_level, root_handlers = root.level, root.handlers[:]
        # "sagemaker.config" sets its own level, so its parent's does not reach it.
        sdk_loggers = {name: logging.getLogger(name).level for name in ("sagemaker", "sagemaker.config")}
        try:
            boto3.setup_default_session(region_name=region, **_OFFLINE_CREDENTIALS)
            for name, value in generation_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            with warnings.catch_warnings():
                # "Running within a PipelineSession, there will be No Wait, No Logs...": expected here.
                warnings.filterwarnings("ignore", category=UserWarning, module=r"sagemaker\.")
                # The SDK's own imports of its moved modules; nothing of ours.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker\.")
                import sagemaker.mlops.workflow  # noqa: F401  (the import-time client, offline)

                root.setLevel(root_level)
                root.handlers[:] = root_handlers
                # The SDK explains its defaults at INFO/WARNING ("Popping out 'TrainingJobName'...").
                for name in sdk_loggers:
                    logging.getLogger(name).setLevel(logging.ERROR)
                yield _boto_session(region)
        finally:
            boto3.DEFAULT_SESSION = default_session
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            root.setLevel(root_level)
            root.handlers[:] = root_handlers
            for name, level in sdk_loggers.items():
                logging.getLogger(name).setLevel(level)


_generated: dict[str, str] = {}
_GENERATED_MAX = 256


def clear_generated() -> None:
    """Forget generated definitions (the next call runs the SDK again)."""
    _generated.clear()


def _once_per_input(generate: Callable[..., str]) -> Callable[..., str]:
    """Generation is deterministic, so each distinct input is generated once per process (about 2 s of
    SDK work each; `mlops plan --all`, promotion gates and the tests plan the same stacks often)."""

    @functools.wraps(generate)
    def memoized(**inputs: Any) -> str:
        key = json.dumps(
            {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in inputs.items()}, sort_keys=True
        )
        if key not in _generated:
            if len(_generated) >= _GENERATED_MAX:
                _generated.pop(next(iter(_generated)))
            _generated[key] = generate(**inputs)
        return _generated[key]

    return memoized


def _trainer(
    session: Any,
    *,
    model: str,
    spec: ModelConfig,
    training: TrainingConfig,
    image: str,
    role_arn: str,
    artifacts_bucket: str,
    kms_key: str,
    model_package_group: str,
    serving_image: str,
    network: Network | None,
    tracking_uri: str | None = None,
) -> Any:
    """The ModelTrainer whose `train` request is the Training step: the team's image and role, the
    run's hyperparameters without the registration ones (`model_version` = the execution id,
    `shuffle_labels` = the ShuffleLabels parameter), KMS-encrypted volume and output, spot with
    checkpoints when configured, and the stack's network. With `tracking_uri` (a SageMaker MLflow
    tracking server's ARN) the job's environment has MLFLOW_TRACKING_URI, so the container logs the run
    there (the `sagemaker-mlflow` plugin in the training image signs the requests with the job's role);
    the tuning step's trials inherit it. Call inside `_offline_sdk`."""
    from sagemaker.core.training.configs import CheckpointConfig, Compute, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.train import ModelTrainer

    wait_hours = (training.max_wait_hours or training.max_runtime_hours * 2) if training.use_spot else None
    return ModelTrainer(
        sagemaker_session=session,
        role=role_arn,
        base_job_name=model,
        # None, not {}: without tracking the request carries no Environment (the document is unchanged).
        environment={TRACKING_URI_ENV: tracking_uri} if tracking_uri else None,
        training_image=image,
        training_input_mode="File",
        hyperparameters={
            **{k: v for k, v in run_hyperparameters(
                model=model, spec=spec, training=training, artifacts_bucket=artifacts_bucket,
                model_package_group=model_package_group, serving_image=serving_image,
            ).items() if k not in REGISTRATION_HYPERPARAMETERS},
            "model_version": ExecutionVariables.PIPELINE_EXECUTION_ID,
            "shuffle_labels": ParameterString(name=SHUFFLE_PARAMETER, default_value="false"),
        },
        compute=Compute(
            instance_type=training.instance_type,
            instance_count=training.instance_count,
            volume_size_in_gb=training.volume_size_gb,
            volume_kms_key_id=kms_key,
            enable_managed_spot_training=True if training.use_spot else None,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=training.max_runtime_hours * 3600,
            max_wait_time_in_seconds=wait_hours * 3600 if wait_hours else None,
        ),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{artifacts_bucket}/training-output/{model}", kms_key_id=kms_key),
        # Spot jobs resume from their last checkpoint after an interruption.
        checkpoint_config=(
            CheckpointConfig(s3_uri=checkpoints_uri(artifacts_bucket, model), local_path="/opt/ml/checkpoints")
            if training.use_spot else None
        ),
        # No network isolation: the container uploads its artifact and reads S3 itself.
        networking=Networking(
            subnets=list(network.subnet_ids) if network else None,
            security_group_ids=list(network.security_group_ids) if network else None,
            # Encrypt traffic between hosts when the job is distributed.
            enable_inter_container_traffic_encryption=training.instance_count > 1,
        ),
    )


def _channels(*, dataset: Any, schema_uri: str) -> list[Any]:
    """The job's input channels: the Dataset step's output (train/, validation/, manifest.json) as
    `train` (the container splits by the manifest's cutoff), the feature schema as `config`."""
    from sagemaker.core.training.configs import Channel, DataSource, S3DataSource

    def channel(name: str, uri: Any, content_type: str) -> Any:
        return Channel(
            channel_name=name,
            data_source=DataSource(s3_data_source=S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated")),
            content_type=content_type,
        )

    return [channel("train", steps.output_uri(dataset, steps.DATASET_OUTPUT), "application/x-parquet"),
            channel("config", schema_uri, "application/json")]


@_once_per_input
def pipeline_definition(
    *,
    pipeline_name: str,
    region: str,
    model: str,
    spec: ModelConfig,
    training: TrainingConfig,
    image: str,
    role_arn: str,
    training_role_arn: str,
    features_uri: str,
    artifacts_bucket: str,
    kms_key: str,
    model_package_group: str,
    serving_image: str,
    network: Network | None,
    sources: RetrainingSources,
    tracking_uri: str | None = None,
) -> str:
    """The pipeline definition document (JSON, keys sorted: the same inputs give the same bytes).

    Steps STEP_ORDER (Register and Fail nested in Condition's branches). The Train step's arguments are
    CreateTrainingJob's parameters without TrainingJobName (SageMaker Pipelines names each run's job);
    `model_version`, which keys the uploaded artifact, is the pipeline execution id."""
    with _offline_sdk(region) as boto_session:
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.parameters import ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import Pipeline, PipelineExperimentConfig, TrainingStep

        session = PipelineSession(boto_session=boto_session, sagemaker_config=copy.deepcopy(SDK_CONFIG))
        common = dict(model=model, spec=spec, training=training, image=image, role_arn=role_arn, kms_key=kms_key, network=network)
        schema_uri = f"s3://{artifacts_bucket}/{schema_key(model)}"
        dataset = steps.dataset_step(session, **common, features_uri=features_uri, schema_uri=schema_uri,
                                     artifacts_bucket=artifacts_bucket, sources=sources)
        # Per-step roles: the Train step's job runs as the training role, the processing steps as the pipeline's.
        trainer = _trainer(session, **{k: v for k, v in common.items() if k not in ("kms_key", "role_arn")}, kms_key=kms_key,
                           role_arn=training_role_arn, tracking_uri=tracking_uri,
                           artifacts_bucket=artifacts_bucket, model_package_group=model_package_group, serving_image=serving_image)
        channels = _channels(dataset=dataset, schema_uri=schema_uri)
        if spec.tuning is None:
            train = TrainingStep(name=STEP_NAME, step_args=trainer.train(input_data_config=channels))
            candidate = train
        else:  # issue #20: a tuning job instead, its best trial evaluated
            from specs.pipelines import tuning

            train = tuning.tuning_step(trainer, tuning=spec.tuning, model=model, channels=channels)
            candidate = tuning.BestTrial(step=train, artifacts_bucket=artifacts_bucket, model=model)
        evaluate, report = steps.evaluate_step(session, **common, schema_uri=schema_uri, artifacts_bucket=artifacts_bucket,
                                               sources=sources, dataset=dataset, train=candidate)
        register = steps.register_step(session, model=model, spec=spec, serving_image=serving_image, image=image, role_arn=role_arn,
                                       model_package_group=model_package_group, sources=sources, dataset=dataset, train=candidate,
                                       evaluate=evaluate, report=report if tracking_uri else None)
        condition = steps.decision_steps(evaluate=evaluate, report=report, register=register)
        pipeline = Pipeline(
            name=pipeline_name,
            parameters=[ParameterString(name=TRIGGER_PARAMETER, default_value="manual"),
                        ParameterString(name=SHUFFLE_PARAMETER, default_value="false")],
            pipeline_experiment_config=PipelineExperimentConfig(ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID),
            steps=[dataset, train, evaluate, condition],
            sagemaker_session=session,
        )
        document = json.loads(pipeline.definition())
    assert document["Version"] == DEFINITION_VERSION, document["Version"]
    return json.dumps(document, sort_keys=True)


def all_steps(definition: str | dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of the definition, those nested in a Condition's branches after it, in document order."""
    document = json.loads(definition) if isinstance(definition, str) else definition
    out: list[dict[str, Any]] = []

    def walk(step_list: list[dict[str, Any]]) -> None:
        for step in step_list:
            out.append(step)
            if step["Type"] == "Condition":
                walk(step["Arguments"].get("IfSteps", []))
                walk(step["Arguments"].get("ElseSteps", []))

    walk(document["Steps"])
    return out


def step_arguments(definition: str | dict[str, Any], name: str) -> dict[str, Any]:
    """The arguments of the step called `name` (KeyError naming the steps there are)."""
    found = {s["Name"]: s for s in all_steps(definition)}
    if name not in found:
        raise KeyError(f"the definition has no step {name!r}; it has {sorted(found)}")
    return found[name]["Arguments"]


def training_step_arguments(definition: str | dict[str, Any]) -> dict[str, Any]:
    """The Training step's arguments (a CreateTrainingJob request without TrainingJobName)."""
    document = json.loads(definition) if isinstance(definition, str) else definition
    (step,) = [s for s in document["Steps"] if s["Type"] == "Training"]
    return step["Arguments"]


def retrain_event_pattern(alarm_names: list[str]) -> dict[str, Any]:
    """EventBridge pattern: one of these alarms entered ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": sorted(alarm_names), "state": {"value": ["ALARM"]}},
    }
