"""Retraining: the pipeline definition (a valid CreateTrainingJob step), the alarm rule that starts it,
the schedule, and the role that may start nothing but this pipeline."""
from __future__ import annotations

import functools
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from specs.config.schema import ModelConfig, Network, TrainingConfig
from components.retraining import TOKEN, Retraining, RetrainingArgs
from specs.pipelines import retraining as pd
from specs.pipelines import expressions, steps

MODEL = ModelConfig(feature_group="transactions", label="is_fraud", task="binary_classification", approval="auto")
ALARMS = ["t-dev-scoring-drift-max-feature-psi", "t-dev-scoring-drift-prediction-psi"]
SOURCES = steps.Sources(
    feature_group="t-dev-transactions", captures_uri="s3://t-dev-capture-111111111111/datacapture/t-dev-scoring",
    ground_truth_uri="s3://t-dev-features-111111111111/ground-truth/fraud/", labels_uri="s3://t-dev-features-111111111111/labels/fraud/",
    champions=(("scoring/champion", "s3://t-dev-artifacts-111111111111/models/fraud/2/model.tar.gz"),), config_hash="sha256:" + "ab" * 32,
)
SOURCE_ARGS = {k: getattr(SOURCES, k) for k in ("feature_group", "captures_uri", "ground_truth_uri", "labels_uri", "champions", "config_hash")}
NETWORK = Network(vpc_id="vpc-0a1b2c3d4e5f60718", subnet_ids=["subnet-0a1b2c3d4e5f60719"], security_group_ids=["sg-0a1b2c3d4e5f6071b"])


def _definition(training: TrainingConfig, network: Network | None = None) -> str:
    # Generation takes the SDK a couple of seconds; equal inputs give equal bytes, so reuse them.
    return _generated(training.model_dump_json(), network.model_dump_json() if network else None)


@functools.cache
def _generated(training_json: str, network_json: str | None) -> str:
    training = TrainingConfig.model_validate_json(training_json)
    network = Network.model_validate_json(network_json) if network_json else None
    return pd.pipeline_definition(
        pipeline_name="t-dev-fraud-train", region="eu-west-1",
        model="fraud", spec=MODEL, training=training, image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/training:0.1.0",
        role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-execution", features_uri="s3://t-dev-features-111111111111/offline-store/x",
        artifacts_bucket="t-dev-artifacts-111111111111", kms_key="arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops",
        model_package_group="t-dev-fraud", serving_image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0", network=network,
        **SOURCE_ARGS,
    )


def _sample_context(*, passed: bool = True) -> expressions.Context:
    """What a run knows by the time it reaches its last step, with sample values."""
    return expressions.Context(
        execution={"PipelineExecutionId": "abc123def456", "PipelineName": "t-dev-fraud-train", "StartDateTime": "2026-12-03T10:00:00Z",
                   "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-train/execution/abc123def456"},
        parameters={"Trigger": "alarm", "ShuffleLabels": "false"},
        steps={
            "Dataset": {"ProcessingOutputConfig": {"Outputs": {"dataset": {"S3Output": {"S3Uri": "s3://t-dev-artifacts-111111111111/datasets/fraud/abc123def456"}}}}},
            "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://t-dev-artifacts-111111111111/training-output/fraud/job/output/model.tar.gz"},
                      "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/pipelines-abc-train"},
            "Evaluate": {"ProcessingOutputConfig": {"Outputs": {"evaluation": {"S3Output": {"S3Uri": "s3://t-dev-artifacts-111111111111/evaluations/fraud/abc123def456"}}}}},
        },
        property_files={("Evaluate", "Evaluation"): {"decision": {"passed": passed, "reason": "regression gate failed: auc 0.61 vs 0.85"}}},
    )


def _steps(training: TrainingConfig = TrainingConfig(), network: Network | None = None) -> dict[str, dict]:
    """Every step of the definition by name, Condition branches included."""
    found: dict[str, dict] = {}

    def add(step: dict) -> None:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                add(inner)

    for step in json.loads(_definition(training, network))["Steps"]:
        add(step)
    return found


def _request(training: TrainingConfig, network: Network | None = None) -> dict:
    """The generated definition's Training step arguments."""
    return pd.training_step_arguments(_definition(training, network))


@pytest.mark.parametrize("training, network", [
    (TrainingConfig(), None),
    (TrainingConfig(instance_type="ml.g5.xlarge", instance_count=2, use_spot=True, max_wait_hours=48, hyperparameters={"epochs": 3, "hidden_units": [64, 32]}), NETWORK),
])
def test_training_step_arguments_are_a_valid_create_training_job_request(training, network):
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob").input_shape
    # What the service sends when a run starts: execution variables resolved.
    request = expressions.evaluate({"TrainingJobName": "pipelines-abc-Train-def", **_request(training, network)}, _sample_context())
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    assert '"Get"' not in json.dumps(request) and "Std:" not in json.dumps(request)  # every expression resolved


def test_each_pipeline_run_keys_its_artifact_by_its_execution_id():
    request = _request(TrainingConfig())
    assert request["HyperParameters"]["model_version"] == {"Get": "Execution.PipelineExecutionId"}
    resolved = pd.resolve(request, {"Execution.PipelineExecutionId": "run-7"})
    assert resolved["HyperParameters"]["model_version"] == "run-7"


def test_spot_training_checkpoints_to_s3_and_waits_at_most_the_configured_time():
    request = _request(TrainingConfig(use_spot=True, max_runtime_hours=10, max_wait_hours=30))
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 36000, "MaxWaitTimeInSeconds": 108000}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://t-dev-artifacts-111111111111/checkpoints/fraud"
    assert "EnableManagedSpotTraining" not in _request(TrainingConfig())


def test_training_job_trains_on_the_dataset_step_registers_nothing_and_encrypts_everything():
    request = _request(TrainingConfig(instance_count=2))
    hp = request["HyperParameters"]
    # The Register step registers, after the evaluation: the container must not.
    assert "model_package_group_name" not in hp and "auto_approve" not in hp
    assert hp["artifact_s3_uri"] == "s3://t-dev-artifacts-111111111111/models"
    assert hp["shuffle_labels"] == {"Get": "Parameters.ShuffleLabels"}
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Dataset.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri"}
    assert request["OutputDataConfig"]["KmsKeyId"] == request["ResourceConfig"]["VolumeKmsKeyId"] == "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops"
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "config"]
    assert [c["ContentType"] for c in request["InputDataConfig"]] == ["application/x-parquet", "application/json"]
    assert request["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://t-dev-artifacts-111111111111/config/fraud/feature_schema.json"


def test_training_job_keeps_network_access_and_single_host_jobs_skip_inter_host_encryption():
    request = _request(TrainingConfig(), NETWORK)
    # The container registers the new version through the SageMaker API.
    assert "EnableNetworkIsolation" not in request
    assert request["EnableInterContainerTrafficEncryption"] is False
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-0a1b2c3d4e5f6071b"], "Subnets": ["subnet-0a1b2c3d4e5f60719"]}
    assert "VpcConfig" not in _request(TrainingConfig())


def test_retrain_rule_matches_only_these_alarms_entering_alarm():
    pattern = pd.retrain_event_pattern(ALARMS)
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"] == {"alarmName": sorted(ALARMS), "state": {"value": ["ALARM"]}}


def _build(mock_pulumi, namer, *, training: TrainingConfig, alarms: list[str], model: str = "fraud", refused: bool = False):
    run = mock_pulumi.refused if refused else mock_pulumi.run
    return run(lambda: Retraining("t-dev-fraud-retraining", RetrainingArgs(
        namer=namer, region="eu-west-1", model=model, spec=MODEL, training=training,
        feature_schema={"format_version": 1, "features": []}, training_image="img:train", serving_image="img:serve",
        execution_role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-execution",
        kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/k", artifacts_bucket="t-dev-artifacts-111111111111",
        features_uri="s3://t-dev-features-111111111111/offline-store/x", sources=SOURCES, trigger_alarms=alarms, tags=mock_pulumi.tags,
    )))


def test_alarm_triggered_retraining_registers_pipeline_rule_target_and_a_narrow_starter_role(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=ALARMS)
    children = run.children(mock_pulumi.top_urn(TOKEN, "t-dev-fraud-retraining"))
    assert sorted(r.type for r in children) == sorted([
        "aws:s3/bucketObjectv2:BucketObjectv2", "aws:sagemaker/pipeline:Pipeline", "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
    ])
    pipeline = run.one("aws:sagemaker/pipeline:Pipeline", "t-dev-fraud-retraining-pipeline")
    assert pipeline.inputs["pipelineName"] == "t-dev-fraud-train"
    # The SDK-generated definition for the resolved role, bucket, key and offline store.
    expected = pd.pipeline_definition(
        pipeline_name="t-dev-fraud-train", region="eu-west-1", model="fraud", spec=MODEL, training=TrainingConfig(),
        image="img:train", role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-execution",
        features_uri="s3://t-dev-features-111111111111/offline-store/x", artifacts_bucket="t-dev-artifacts-111111111111",
        kms_key="arn:aws:kms:eu-west-1:111111111111:key/k", model_package_group="t-dev-fraud", serving_image="img:serve", network=None,
        **SOURCE_ARGS,
    )
    assert pipeline.inputs["pipelineDefinition"] == expected
    assert [p["Name"] for p in json.loads(expected)["Parameters"]] == ["Trigger", "ShuffleLabels"]
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "t-dev-fraud-retraining-on-alarm")
    assert json.loads(rule.inputs["eventPattern"]) == pd.retrain_event_pattern(ALARMS)
    target = run.one("aws:cloudwatch/eventTarget:EventTarget", "t-dev-fraud-retraining-on-alarm-start")
    assert target.inputs["arn"] == pipeline.outputs["arn"]
    assert target.inputs["sagemakerPipelineTarget"] == {"pipelineParameterLists": [{"name": "Trigger", "value": "alarm"}]}
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "t-dev-fraud-retraining-starter-policy").inputs["policy"])
    assert policy["Statement"] == [{"Sid": "StartRetraining", "Effect": "Allow", "Action": ["sagemaker:StartPipelineExecution"], "Resource": [pipeline.outputs["arn"]]}]
    trust = json.loads(run.one("aws:iam/role:Role", "t-dev-fraud-retraining-starter-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}
    schema = run.one("aws:s3/bucketObjectv2:BucketObjectv2", "t-dev-fraud-retraining-feature-schema")
    assert (schema.inputs["key"], schema.inputs["serverSideEncryption"]) == ("config/fraud/feature_schema.json", "aws:kms")


def test_a_schedule_starts_the_pipeline_without_alarms(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(schedule="cron(0 3 ? * MON *)"), alarms=[])
    assert run.of_type("aws:cloudwatch/eventRule:EventRule") == []
    (schedule,) = run.of_type("aws:scheduler/schedule:Schedule")
    assert schedule.inputs["scheduleExpression"] == "cron(0 3 ? * MON *)"
    assert schedule.inputs["target"]["sagemakerPipelineParameters"] == {"pipelineParameters": [{"name": "Trigger", "value": "schedule"}]}


def test_retraining_without_any_trigger_is_an_input_error(mock_pulumi, namer):
    problems = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=[], refused=True)
    assert problems == [("trigger_alarms", "model 'fraud': retraining needs a trigger: drift/quality alarms or training.schedule")]


def test_empty_model_name_and_no_trigger_are_reported_together(mock_pulumi, namer):
    problems = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=[], model="", refused=True)
    assert problems == [
        ("model", "must not be empty, got ''"),
        ("trigger_alarms", "model '': retraining needs a trigger: drift/quality alarms or training.schedule"),
    ]


def test_the_pipeline_builds_a_dataset_trains_evaluates_and_registers_only_what_passes():
    document = json.loads(_definition(TrainingConfig()))
    assert [s["Name"] for s in document["Steps"]] == ["Dataset", "Train", "Evaluate", "Condition"]
    condition = next(s for s in document["Steps"] if s["Name"] == "Condition")["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in condition["ElseSteps"]] == ["Fail"]
    (check,) = condition["Conditions"]
    assert check["Type"] == "Equals" and check["RightValue"] is True
    assert expressions.condition_holds(check, _sample_context(passed=True))
    assert not expressions.condition_holds(check, _sample_context(passed=False))
    fail = _steps()["Fail"]["Arguments"]["ErrorMessage"]
    assert expressions.evaluate(fail, _sample_context(passed=False)) == (
        "Evaluation refused the candidate: regression gate failed: auc 0.61 vs 0.85")


@pytest.mark.parametrize("network", [None, NETWORK])
def test_every_step_request_is_valid_for_its_api_once_resolved(network):
    model = botocore.session.get_session().get_service_model("sagemaker")
    apis = {"Processing": ("CreateProcessingJob", {"ProcessingJobName": "pipelines-abc-step"}),
            "Training": ("CreateTrainingJob", {"TrainingJobName": "pipelines-abc-Train"}),
            "RegisterModel": ("CreateModelPackage", {})}
    seen = set()
    for name, step in _steps(TrainingConfig(), network).items():
        if step["Type"] not in apis:
            continue
        operation, added = apis[step["Type"]]
        request = expressions.evaluate({**added, **step["Arguments"]}, _sample_context())
        report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{name}: {report.generate_report()}"
        assert '"Get"' not in json.dumps(request) and "Std:" not in json.dumps(request)
        seen.add(name)
    assert seen == {"Dataset", "Train", "Evaluate", "Register"}


def test_dataset_step_reads_the_window_of_captures_and_ground_truth_from_s3():
    arguments = _steps()["Dataset"]["Arguments"]
    args = expressions.evaluate(arguments["AppSpecification"]["ContainerArguments"], _sample_context())
    assert arguments["AppSpecification"]["ContainerEntrypoint"] == ["mlops-train", "dataset"]
    flags = dict(zip(args[::2], args[1::2]))
    assert flags["--captures"] == SOURCES.captures_uri and flags["--ground-truth"] == SOURCES.ground_truth_uri
    assert flags["--window-days"] == "30" and flags["--as-of"] == "2026-12-03T10:00:00Z"
    assert flags["--offline-store"] == "s3://t-dev-features-111111111111/offline-store/x"
    assert flags["--feature-group"] == "t-dev-transactions" and flags["--engine"] == "duckdb"
    outputs = expressions.evaluate(arguments["ProcessingOutputConfig"], _sample_context())
    assert outputs["Outputs"][0]["S3Output"]["S3Uri"] == "s3://t-dev-artifacts-111111111111/datasets/fraud/abc123def456"
    assert outputs["KmsKeyId"] == arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]


def test_evaluate_faces_the_champions_and_records_lineage_and_register_attaches_it():
    context = _sample_context()
    args = expressions.evaluate(_steps()["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"], context)
    assert args[args.index("--candidate") + 1].endswith("/output/model.tar.gz")
    assert args[args.index("--champion") + 1] == "scoring/champion=s3://t-dev-artifacts-111111111111/models/fraud/2/model.tar.gz"
    lineage_args = [args[i + 1] for i, a in enumerate(args) if a == "--lineage"]
    assert f"mlops:config_hash={SOURCES.config_hash}" in lineage_args
    assert "mlops:pipeline_execution=" + context.execution["PipelineExecutionArn"] in lineage_args
    register = expressions.evaluate(_steps()["Register"]["Arguments"], context)
    assert register["ModelApprovalStatus"] == "Approved"  # MODEL.approval == "auto"
    assert register["ModelPackageGroupName"] == "t-dev-fraud"
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == (
        "s3://t-dev-artifacts-111111111111/evaluations/fraud/abc123def456/model_quality/candidate.json")
    metadata = register["CustomerMetadataProperties"]
    assert metadata["mlops:evaluation"] == "s3://t-dev-artifacts-111111111111/evaluations/fraud/abc123def456/evaluation.json"
    assert metadata["mlops:dataset_manifest"] == "s3://t-dev-artifacts-111111111111/datasets/fraud/abc123def456/manifest.json"
    assert metadata["mlops:training_job"] == context.steps["Train"]["TrainingJobArn"]
