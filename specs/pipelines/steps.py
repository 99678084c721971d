"""The retraining pipeline's steps other than Train, built with the SageMaker SDK (v3) under a
`PipelineSession`: each step's arguments are the SDK's own API request (CreateProcessingJob for Dataset
and Evaluate, CreateModelPackage for Register), with pipeline expressions where a value is only known
when a run executes.

- Dataset: `mlops-train dataset` in the training image. The offline store is downloaded into the job
  and joined with duckdb, running the same SQL text Athena would (`--engine athena` is the alternative
  for stores too large to download). Label sources: specs.pipelines.sources.
- Evaluate: `mlops-train evaluate`, the candidate against every champion, writing evaluation.json
  (the `Evaluation` property file) and the model-quality JSON (docs/contracts.md section 8).
- Condition: `decision.passed` of evaluation.json; Register when true, Fail otherwise.
- Register: the Train step's artifact with the serving image in the team's Model Package Group, the
  candidate's model-quality JSON as ModelQuality statistics and the lineage keys (specs.lineage).
- Fail: the decision's reason as the execution's failure reason.

Inside a processing job the inputs and outputs live under /opt/ml/processing (PROCESSING_ROOT); the
local executor (mlops.local.pipeline_exec) maps that root to a run directory.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer;
tests/test_layout.py checks it).
"""
from __future__ import annotations

import json
from typing import Any

from mlops_contracts import evaluation as evaluation_contract

from specs import lineage
from specs.config.schema import ModelConfig, Network, TrainingConfig
from specs.pipelines.sources import LABEL_EVENTS_FILE, RetrainingSources

DATASET_STEP = "Dataset"
EVALUATE_STEP = "Evaluate"
CONDITION_STEP = "Condition"
REGISTER_STEP = "Register"
FAIL_STEP = "Fail"
EVALUATION_PROPERTY_FILE = "Evaluation"
"""The property file on the Evaluate step's evaluation.json that the Condition and Fail steps read."""
DATASET_OUTPUT = "dataset"
EVALUATION_OUTPUT = "evaluation"

PROCESSING_ROOT = "/opt/ml/processing"
INPUT_ROOT = f"{PROCESSING_ROOT}/input"
DATASET_DIR = f"{PROCESSING_ROOT}/dataset"
EVALUATION_DIR = f"{PROCESSING_ROOT}/evaluation"
SCHEMA_PATH = f"{INPUT_ROOT}/config/feature_schema.json"
PROCESSING_INSTANCE_TYPE = "ml.m5.xlarge"
"""Dataset and Evaluate run on CPU: a join and a forward pass over the held-back slice."""
PROCESSING_VOLUME_GB = 30
CONTENT_TYPES = ["application/json", "text/csv"]
"""As the training container registers (mlops_training.register)."""
RESPONSE_TYPES = ["application/json"]
FAILURE_PREFIX = "Evaluation refused the candidate:"


def datasets_uri(artifacts_bucket: str, model: str) -> str:
    """Prefix of the model's training sets; each run writes <prefix>/<execution id>/."""
    return f"s3://{artifacts_bucket}/datasets/{model}"


def evaluations_uri(artifacts_bucket: str, model: str) -> str:
    """Prefix of the model's evaluations; each run writes <prefix>/<execution id>/."""
    return f"s3://{artifacts_bucket}/evaluations/{model}"


def _processor(session: Any, *, entrypoint: list[str], base_job_name: str, image: str, role_arn: str, kms_key: str,
               training: TrainingConfig, network: Network | None) -> Any:
    """A Processor with the training image, role, KMS volume and output and the stack's network."""
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor

    return Processor(
        role=role_arn, image_uri=image, instance_count=1, instance_type=PROCESSING_INSTANCE_TYPE,
        entrypoint=entrypoint, volume_size_in_gb=PROCESSING_VOLUME_GB, volume_kms_key=kms_key, output_kms_key=kms_key,
        max_runtime_in_seconds=training.max_runtime_hours * 3600, base_job_name=base_job_name, sagemaker_session=session,
        network_config=NetworkConfig(
            subnets=list(network.subnet_ids) if network else None,
            security_group_ids=list(network.security_group_ids) if network else None,
        ),
    )


def _input(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated",
    ))


def _output(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"))


def _per_run(prefix: str) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID])


def _label_inputs(sources: RetrainingSources) -> tuple[list[Any], list[str]]:
    """ProcessingInputs and `mlops-train dataset` arguments for the model's label events."""
    if sources.captures:
        inputs = [_input(f"captures-{uri.rsplit('/', 1)[1]}", uri, f"{INPUT_ROOT}/captures/{uri.rsplit('/', 1)[1]}")
                  for uri in sources.captures]
        inputs.append(_input("ground-truth", sources.ground_truth_uri, f"{INPUT_ROOT}/ground-truth"))
        return inputs, ["--captures", f"{INPUT_ROOT}/captures", "--ground-truth", f"{INPUT_ROOT}/ground-truth"]
    assert sources.label_events_uri, "sources carry captures or label events"
    return ([_input("label-events", sources.label_events_uri, f"{INPUT_ROOT}/labels")],
            ["--label-events", f"{INPUT_ROOT}/labels/{LABEL_EVENTS_FILE}"])


def dataset_step(session: Any, *, model: str, spec: ModelConfig, training: TrainingConfig, image: str, role_arn: str,
                 kms_key: str, network: Network | None, features_uri: str, schema_uri: str, artifacts_bucket: str,
                 sources: RetrainingSources) -> Any:
    """The Dataset ProcessingStep: a point-in-time training set of the model's window, as of the run's start."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow import ProcessingStep

    processor = _processor(session, entrypoint=["mlops-train", "dataset"], base_job_name=f"{model}-dataset", image=image,
                           role_arn=role_arn, kms_key=kms_key, training=training, network=network)
    label_inputs, label_arguments = _label_inputs(sources)
    arguments = [
        "--schema", SCHEMA_PATH, "--out", DATASET_DIR, "--feature-group", sources.feature_group,
        "--engine", "duckdb", "--offline-store", f"{INPUT_ROOT}/offline-store",
        *label_arguments,
        "--window-days", str(spec.training_window_days), "--as-of", ExecutionVariables.START_DATETIME,
    ]
    step_args = processor.run(
        inputs=[_input("offline-store", features_uri, f"{INPUT_ROOT}/offline-store"),
                _input("config", schema_uri, f"{INPUT_ROOT}/config"), *label_inputs],
        outputs=[_output(DATASET_OUTPUT, _per_run(datasets_uri(artifacts_bucket, model)), DATASET_DIR)],
        arguments=arguments,
    )
    return ProcessingStep(name=DATASET_STEP, step_args=step_args)


def output_uri(step: Any, output: str) -> Any:
    """The S3 URI a processing step uploaded `output` to (a property reference)."""
    return step.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri


def _join(*values: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="", values=list(values))


def _lineage(*, dataset: Any, train: Any, sources: RetrainingSources, image: str) -> dict[str, list[Any]]:
    """The lineage keys the definition can fill, each as the parts of its value (CODE_VERSION the
    container reports itself); parts are joined flat, never a Join inside a Join."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables

    return {
        lineage.PIPELINE_EXECUTION: [ExecutionVariables.PIPELINE_EXECUTION_ARN],
        lineage.TRAINING_JOB: [train.properties.TrainingJobArn],
        lineage.DATASET_MANIFEST: [output_uri(dataset, DATASET_OUTPUT), "/manifest.json"],
        lineage.CONFIG_HASH: [sources.config_hash],
        lineage.IMAGE: [image],
    }


def _value(parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else _join(*parts)


def evaluate_step(session: Any, *, model: str, spec: ModelConfig, training: TrainingConfig, image: str, role_arn: str,
                  kms_key: str, network: Network | None, schema_uri: str, artifacts_bucket: str,
                  sources: RetrainingSources, dataset: Any, train: Any) -> tuple[Any, Any]:
    """The Evaluate ProcessingStep and its `Evaluation` property file."""
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    processor = _processor(session, entrypoint=["mlops-train", "evaluate"], base_job_name=f"{model}-evaluate", image=image,
                           role_arn=role_arn, kms_key=kms_key, training=training, network=network)
    arguments: list[Any] = [
        "--schema", SCHEMA_PATH, "--dataset", f"{INPUT_ROOT}/dataset",
        "--candidate", train.properties.ModelArtifacts.S3ModelArtifacts,
    ]
    for name, uri in sources.champions:
        arguments += ["--champion", f"{name}={uri}"]
    arguments += ["--gates", json.dumps(spec.gates, sort_keys=True), "--max-regression", str(spec.max_regression)]
    for key, parts in _lineage(dataset=dataset, train=train, sources=sources, image=image).items():
        arguments += ["--lineage", (f"{key}={parts[0]}" if len(parts) == 1 and isinstance(parts[0], str)
                                   else _join(f"{key}=", *parts))]
    arguments += ["--out", EVALUATION_DIR]
    step_args = processor.run(
        inputs=[_input("config", schema_uri, f"{INPUT_ROOT}/config"),
                _input("dataset", output_uri(dataset, DATASET_OUTPUT), f"{INPUT_ROOT}/dataset")],
        outputs=[_output(EVALUATION_OUTPUT, _per_run(evaluations_uri(artifacts_bucket, model)), EVALUATION_DIR)],
        arguments=arguments,
    )
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name=EVALUATION_OUTPUT, path=evaluation_contract.EVALUATION_FILE)
    return ProcessingStep(name=EVALUATE_STEP, step_args=step_args, property_files=[report]), report


def register_step(session: Any, *, model: str, spec: ModelConfig, serving_image: str, image: str, role_arn: str,
                  model_package_group: str, sources: RetrainingSources, dataset: Any, train: Any, evaluate: Any,
                  report: Any = None) -> Any:
    """The Register ModelStep: a CreateModelPackage request with the evaluation attached. With `report`
    (the Evaluate step's property file; given when the Train step logs to MLflow) the version also carries
    the candidate's MLflow run id, read from the evaluation's lineage (`mlops-train evaluate` records it
    there from the candidate's metadata.json)."""
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation = output_uri(evaluate, EVALUATION_OUTPUT)
    quality = _join(evaluation, f"/{evaluation_contract.MODEL_QUALITY_DIR}/{evaluation_contract.CANDIDATE_QUALITY_FILE}")
    # ModelStep takes the request the SDK's registration function records under the PipelineSession;
    # ModelBuilder.register() would also package code (and look up a default bucket), which an
    # image-and-artifact model does not need.
    session.init_model_step_arguments(ModelBuilder(image_uri=serving_image, s3_model_data_url=model_data,
                                                   role_arn=role_arn, sagemaker_session=session))
    step_args = create_model_package_from_containers(
        session,
        containers=[{"Image": serving_image, "ModelDataUrl": model_data}],
        content_types=CONTENT_TYPES,
        response_types=RESPONSE_TYPES,
        model_package_group_name=model_package_group,
        model_metrics=ModelMetrics(model_statistics=MetricsSource(content_type="application/json", s3_uri=quality))._to_request_dict(),
        approval_status="Approved" if spec.approval == "auto" else "PendingManualApproval",
        description=_join(f"{model}: retrained by pipeline execution ", ExecutionVariables.PIPELINE_EXECUTION_ID),
        customer_metadata_properties={
            lineage.EVALUATION: _join(evaluation, f"/{evaluation_contract.EVALUATION_FILE}"),
            **{k: _value(parts) for k, parts in _lineage(dataset=dataset, train=train, sources=sources, image=image).items()},
            **({lineage.MLFLOW_RUN: _evaluation_field(evaluate, report, f"lineage['{lineage.MLFLOW_RUN}']")} if report is not None else {}),
        },
    )
    return ModelStep(name=REGISTER_STEP, step_args=step_args)


def _evaluation_field(evaluate: Any, report: Any, path: str) -> Any:
    """A field of the Evaluate step's evaluation.json (its property file), read when the step runs."""
    from sagemaker.core.workflow.functions import JsonGet

    return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)


def decision_steps(*, evaluate: Any, report: Any, register: Any) -> Any:
    """Condition: `decision.passed` is true -> Register, else Fail with the decision's reason."""
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    def field(path: str) -> Any:
        return _evaluation_field(evaluate, report, path)

    fail = FailStep(name=FAIL_STEP, error_message=Join(on=" ", values=[FAILURE_PREFIX, field("decision.reason")]))
    return ConditionStep(name=CONDITION_STEP, conditions=[ConditionEquals(left=field("decision.passed"), right=True)],
                         if_steps=[register], else_steps=[fail])
