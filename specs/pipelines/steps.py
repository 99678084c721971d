"""The retraining pipeline's steps around the Train step, built with the SageMaker Python SDK (v3) under a
PipelineSession: Dataset and Evaluate (Processing steps running the training image's `mlops-train
dataset` and `mlops-train evaluate`), Condition, Register (CreateModelPackage) and Fail.

- Dataset builds the point-in-time training set for the model's window (`training_window_days`, ending
  at the execution's start) from the offline store and the label events: the captures of the endpoint
  that serves the model joined with its ground truth, or, for a model no endpoint serves, the label
  events Parquet under `s3://<features bucket>/labels/<model>/`. The container reads the offline store,
  captures and ground truth from S3 itself (a Processing input would fail on a prefix that is still
  empty, as ground truth is before any label arrives); DuckDB runs the same SQL text Athena would
  (`mlops-train dataset --engine athena` is the alternative for stores too large to read in one job).
- Evaluate scores the Train step's artifact and each champion of the stack (the highest-weight
  production variant of every endpoint serving the model) on the dataset's held-back, most recent
  slice, and writes evaluation.json (mlops_contracts.evaluation) with the decision.
- Condition registers when `decision.passed` is true; otherwise Fail ends the execution with the
  decision's reason (which names each failed gate and its figures) as its failure reason.
- Register records the evaluation as the package's model-quality statistics, and the lineage keys of
  specs.lineage as its CustomerMetadataProperties.

Processing jobs run on `PROCESSING_INSTANCE_TYPE` (CPU: neither job trains), KMS-encrypted, in the
stack's network, with the execution role.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer:
the pipeline generator calls these inside `specs.pipelines.retraining._offline_sdk`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from specs import lineage
from specs.config.schema import ModelConfig, Network, StackConfig, TrainingConfig
from specs.naming import Namer

DATASET_STEP, EVALUATE_STEP, CONDITION_STEP, REGISTER_STEP, FAIL_STEP = "Dataset", "Evaluate", "Condition", "Register", "Fail"
PROCESSING_INSTANCE_TYPE = "ml.m5.xlarge"
PROCESSING_MAX_RUNTIME_S = 3 * 3600
PROCESSING_ROOT = "/opt/ml/processing"
"""Where a Processing job's inputs and outputs live in its container (the local executor maps it)."""
SCHEMA_INPUT, LABELS_INPUT = f"{PROCESSING_ROOT}/input/config", f"{PROCESSING_ROOT}/input/labels"
DATASET_OUTPUT, EVALUATION_OUTPUT = f"{PROCESSING_ROOT}/dataset", f"{PROCESSING_ROOT}/evaluation"
EVALUATION_PROPERTY_FILE = "Evaluation"
EVALUATION_FILE = "evaluation.json"
CANDIDATE_QUALITY = "model_quality/candidate.json"
"""The candidate's model-quality document under the Evaluate output (mlops_contracts.evaluation)."""
CONTENT_TYPES = ["application/json", "text/csv"]
RESPONSE_TYPES = ["application/json"]


@dataclass(frozen=True, kw_only=True)
class StepInputs:
    """What the steps around Train need besides the Train step's own inputs."""

    model: str
    spec: ModelConfig
    training: TrainingConfig
    image: str
    serving_image: str
    role_arn: str
    kms_key: str
    network: Network | None
    artifacts_bucket: str
    features_uri: str
    """The feature group's offline store (its resolved S3 URI)."""
    feature_group: str
    """The feature group's name in SageMaker."""
    schema_uri: str
    """The model's feature_schema.json in S3."""
    captures_uri: str | None
    """The data-capture prefix of the endpoint serving the model, or None (no endpoint serves it)."""
    ground_truth_uri: str
    labels_uri: str
    """Where label events wait for a model no endpoint serves (Parquet, record_id/label/label_time)."""
    champions: tuple[tuple[str, str], ...]
    """(name, model data URL) of each champion the candidate faces."""
    config_hash: str
    model_package_group: str


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Where a model's pipeline reads its label events and whom its candidates face, from the stack config."""

    feature_group: str
    captures_uri: str | None
    ground_truth_uri: str
    labels_uri: str
    champions: tuple[tuple[str, str], ...]
    config_hash: str


def sources(config: StackConfig, namer: Namer, model: str) -> Sources:
    """The model's label sources and champions. Captures: the first endpoint (by key) that serves the
    model with data capture on (its `s3://<capture bucket>/datacapture/<endpoint>` prefix). Champions:
    per endpoint serving the model, the production variant with the highest weight (the first on a
    tie), named `<endpoint>/<variant>`, each model data URL once."""
    spec = config.model_registry.models[model]
    serving = {key: e for key, e in sorted(config.endpoints.items()) if e.model == model}
    captured = [key for key, e in serving.items() if e.data_capture.enabled]
    champions: dict[str, str] = {}
    for key, endpoint in serving.items():
        variants = endpoint.production_variants()
        name = max(variants, key=lambda v: (getattr(variants[v], "weight", 1.0), -list(variants).index(v)))
        champions.setdefault(variants[name].model_data_url, f"{key}/{name}")
    features = namer.bucket("features")
    return Sources(
        feature_group=namer.feature_group(spec.feature_group),
        captures_uri=f"s3://{namer.bucket('capture')}/datacapture/{namer.endpoint(captured[0])}" if captured else None,
        ground_truth_uri=spec.ground_truth_uri or namer.ground_truth_uri(model),
        labels_uri=f"s3://{features}/labels/{model}/",
        champions=tuple((name, uri) for uri, name in champions.items()),
        config_hash=lineage.config_hash(config, model),
    )


def _processor(session: Any, inputs: StepInputs, *, command: str) -> Any:
    """A Processor running `mlops-train <command>` in the training image (KMS, network, role)."""
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor

    network = inputs.network
    return Processor(
        role=inputs.role_arn, image_uri=inputs.image, instance_count=1, instance_type=PROCESSING_INSTANCE_TYPE,
        entrypoint=["mlops-train", command], volume_kms_key=inputs.kms_key, output_kms_key=inputs.kms_key,
        max_runtime_in_seconds=PROCESSING_MAX_RUNTIME_S, base_job_name=f"{inputs.model}-{command}",
        sagemaker_session=session,
        network_config=NetworkConfig(
            subnets=list(network.subnet_ids), security_group_ids=list(network.security_group_ids),
        ) if network else None,
    )


def _s3_input(name: str, uri: str, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated",
    ))


def _s3_output(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"))


def _per_execution(bucket: str, *parts: str) -> Any:
    """s3://<bucket>/<parts>/<execution id>: each run writes its own prefix."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[f"s3://{bucket}", *parts, ExecutionVariables.PIPELINE_EXECUTION_ID])


def dataset_step(session: Any, inputs: StepInputs) -> Any:
    """The Dataset step: `mlops-train dataset` over the model's window, output train/, validation/, manifest.json."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow import ProcessingStep

    processing_inputs = [_s3_input("config", inputs.schema_uri, SCHEMA_INPUT)]
    arguments: list[Any] = [
        "--schema", f"{SCHEMA_INPUT}/feature_schema.json", "--out", DATASET_OUTPUT, "--feature-group", inputs.feature_group,
        "--engine", "duckdb", "--offline-store", inputs.features_uri,
        "--window-days", str(inputs.spec.training_window_days), "--as-of", ExecutionVariables.START_DATETIME,
    ]
    if inputs.captures_uri:
        arguments += ["--captures", inputs.captures_uri, "--ground-truth", inputs.ground_truth_uri]
    else:
        processing_inputs.append(_s3_input("labels", inputs.labels_uri, LABELS_INPUT))
        arguments += ["--label-events", f"{LABELS_INPUT}/labels.parquet"]
    step_args = _processor(session, inputs, command="dataset").run(
        inputs=processing_inputs,
        outputs=[_s3_output("dataset", _per_execution(inputs.artifacts_bucket, "datasets", inputs.model), DATASET_OUTPUT)],
        arguments=arguments,
    )
    return ProcessingStep(name=DATASET_STEP, step_args=step_args)


def dataset_uri(dataset: Any) -> Any:
    """The Dataset step's output prefix, as a property reference (the Train channel, the evaluation's input)."""
    return dataset.properties.ProcessingOutputConfig.Outputs["dataset"].S3Output.S3Uri


def _lineage_argument(key: str, value: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="", values=[f"{key}=", value]) if not isinstance(value, str) else f"{key}={value}"


def evaluate_step(session: Any, inputs: StepInputs, *, dataset: Any, train: Any) -> tuple[Any, Any]:
    """The Evaluate step and its `Evaluation` property file (evaluation.json)."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    spec = inputs.spec
    manifest = Join(on="/", values=[dataset_uri(dataset), "manifest.json"])
    lineage_values = {
        lineage.PIPELINE_EXECUTION: ExecutionVariables.PIPELINE_EXECUTION_ARN,
        lineage.TRAINING_JOB: train.properties.TrainingJobArn,
        lineage.DATASET_MANIFEST: manifest,
        lineage.CONFIG_HASH: inputs.config_hash,
        lineage.IMAGE: inputs.image,
    }
    arguments: list[Any] = [
        "--schema", f"{SCHEMA_INPUT}/feature_schema.json", "--dataset", dataset_uri(dataset),
        "--candidate", train.properties.ModelArtifacts.S3ModelArtifacts,
        "--gates", json.dumps(spec.gates, sort_keys=True), "--max-regression", repr(spec.max_regression),
        "--out", EVALUATION_OUTPUT,
    ]
    for name, uri in inputs.champions:
        arguments += ["--champion", f"{name}={uri}"]
    for key, value in lineage_values.items():
        arguments += ["--lineage", _lineage_argument(key, value)]
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE)
    step_args = _processor(session, inputs, command="evaluate").run(
        inputs=[_s3_input("config", inputs.schema_uri, SCHEMA_INPUT)],
        outputs=[_s3_output("evaluation", _per_execution(inputs.artifacts_bucket, "evaluations", inputs.model), EVALUATION_OUTPUT)],
        arguments=arguments,
    )
    return ProcessingStep(name=EVALUATE_STEP, step_args=step_args, property_files=[report]), report


def evaluation_uri(evaluate: Any) -> Any:
    """The Evaluate step's output prefix, as a property reference."""
    return evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri


def register_step(session: Any, inputs: StepInputs, *, dataset: Any, train: Any, evaluate: Any) -> Any:
    """The Register step: CreateModelPackage with the evaluation attached and the lineage keys."""
    import types

    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep

    evaluation = evaluation_uri(evaluate)
    # ModelStep takes the request a registration made under the PipelineSession. ModelBuilder.register
    # would resolve the caller's identity (STS) first; generation must stay offline, so the request is
    # made with the registry helper ModelBuilder itself calls, the session holding the step's context.
    session.init_model_step_arguments(types.SimpleNamespace(sagemaker_session=session))
    step_args = create_model_package_from_containers(
        session,
        containers=[{"Image": inputs.serving_image, "ModelDataUrl": train.properties.ModelArtifacts.S3ModelArtifacts}],
        content_types=CONTENT_TYPES, response_types=RESPONSE_TYPES,
        model_package_group_name=inputs.model_package_group,
        model_metrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": Join(on="/", values=[evaluation, CANDIDATE_QUALITY]),
        }}},
        approval_status="Approved" if inputs.spec.approval == "auto" else "PendingManualApproval",
        customer_metadata_properties={
            lineage.EVALUATION: Join(on="/", values=[evaluation, EVALUATION_FILE]),
            lineage.PIPELINE_EXECUTION: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            lineage.TRAINING_JOB: train.properties.TrainingJobArn,
            lineage.DATASET_MANIFEST: Join(on="/", values=[dataset_uri(dataset), "manifest.json"]),
            lineage.CONFIG_HASH: inputs.config_hash,
            lineage.IMAGE: inputs.image,
        },
    )
    return ModelStep(name=REGISTER_STEP, step_args=step_args)


def gate_steps(session: Any, inputs: StepInputs, *, dataset: Any, train: Any, evaluate: Any, report: Any) -> Any:
    """The Condition step: Register when the evaluation's decision passed, else Fail with its reason."""
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    def decision(field: str) -> Any:
        return JsonGet(step_name=EVALUATE_STEP, property_file=report, json_path=f"decision.{field}")

    fail = FailStep(name=FAIL_STEP, error_message=Join(on=" ", values=["Evaluation refused the candidate:", decision("reason")]))
    register = register_step(session, inputs, dataset=dataset, train=train, evaluate=evaluate)
    return ConditionStep(
        name=CONDITION_STEP, conditions=[ConditionEquals(left=decision("passed"), right=True)],
        if_steps=[register], else_steps=[fail],
    )
