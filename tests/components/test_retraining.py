"""Retraining: the pipeline definition's Train step (a valid CreateTrainingJob request), the alarm rule that starts it,
the schedule, and the role that may start nothing but this pipeline."""
from __future__ import annotations

import functools
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from specs.config.schema import ModelConfig, Network, TrainingConfig
from components.retraining import TOKEN, Retraining, RetrainingArgs
from specs.pipelines import expressions
from specs.pipelines import retraining as pd
from specs.pipelines.sources import RetrainingSources

MODEL = ModelConfig(feature_group="transactions", label="is_fraud", task="binary_classification", approval="auto")
ALARMS = ["t-dev-scoring-drift-max-feature-psi", "t-dev-scoring-drift-prediction-psi"]
SOURCES = RetrainingSources(feature_group="t-dev-transactions", label_events_uri="s3://t-dev-features-111111111111/labels/fraud/label_events.parquet",
                            config_hash="sha256:" + "0" * 64)
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
        role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-pipeline", training_role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-training", features_uri="s3://t-dev-features-111111111111/offline-store/x",
        artifacts_bucket="t-dev-artifacts-111111111111", kms_key="arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops",
        model_package_group="t-dev-fraud", serving_image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0", network=network,
        sources=SOURCES,
    )


def _resolve(request: dict, execution_id: str) -> dict:
    """What the service sends when a run starts: execution variables and the Dataset step's output resolved."""
    context = expressions.Context(execution={"PipelineExecutionId": execution_id}, parameters={"ShuffleLabels": "false", "Trigger": "manual"},
                                  steps={"Dataset": {"ProcessingOutputConfig": {"Outputs": [
                                      {"OutputName": "dataset", "S3Output": {"S3Uri": f"s3://a/datasets/fraud/{execution_id}"}}]}}})
    return expressions.resolve(request, context)


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
    request = _resolve({"TrainingJobName": "pipelines-abc-Train-def", **_request(training, network)}, "abc123def456")
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    assert '"Get"' not in json.dumps(request) and "Std:" not in json.dumps(request)  # every expression resolved


def test_each_pipeline_run_keys_its_artifact_by_its_execution_id():
    request = _request(TrainingConfig())
    assert request["HyperParameters"]["model_version"] == {"Get": "Execution.PipelineExecutionId"}
    resolved = _resolve(request, "run-7")
    assert resolved["HyperParameters"]["model_version"] == "run-7"


def test_spot_training_checkpoints_to_s3_and_waits_at_most_the_configured_time():
    request = _request(TrainingConfig(use_spot=True, max_runtime_hours=10, max_wait_hours=30))
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 36000, "MaxWaitTimeInSeconds": 108000}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://t-dev-artifacts-111111111111/checkpoints/fraud"
    assert "EnableManagedSpotTraining" not in _request(TrainingConfig())


def test_training_job_uploads_without_registering_and_encrypts_everything():
    request = _request(TrainingConfig(instance_count=2))
    hp = request["HyperParameters"]
    # The Register step registers, after the evaluation; the container only uploads its artifact.
    assert "model_package_group_name" not in hp and "auto_approve" not in hp
    assert hp["artifact_s3_uri"] == "s3://t-dev-artifacts-111111111111/models"
    assert request["OutputDataConfig"]["KmsKeyId"] == request["ResourceConfig"]["VolumeKmsKeyId"] == "arn:aws:kms:eu-west-1:111111111111:alias/t-dev-mlops"
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "config"]
    assert [c["ContentType"] for c in request["InputDataConfig"]] == ["application/x-parquet", "application/json"]
    assert request["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://t-dev-artifacts-111111111111/config/fraud/feature_schema.json"


def test_training_job_keeps_network_access_and_single_host_jobs_skip_inter_host_encryption():
    request = _request(TrainingConfig(), NETWORK)
    # The container uploads its artifact to S3 itself.
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
        pipeline_role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-pipeline", training_role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-training",
        kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/k", artifacts_bucket="t-dev-artifacts-111111111111",
        features_uri="s3://t-dev-features-111111111111/offline-store/x", sources=SOURCES, trigger_alarms=alarms, tags=mock_pulumi.tags,
    )))


def test_alarm_triggered_retraining_registers_pipeline_rule_target_and_a_narrow_starter_role(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=ALARMS)
    children = run.children(mock_pulumi.top_urn(TOKEN, "t-dev-fraud-retraining"))
    assert sorted(r.type for r in children) == sorted([
        "aws:s3/bucketObjectv2:BucketObjectv2", "aws:sagemaker/pipeline:Pipeline", "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/logGroup:LogGroup", "aws:sqs/queue:Queue", "aws:lambda/function:Function",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "aws:lambda/permission:Permission",
    ])
    pipeline = run.one("aws:sagemaker/pipeline:Pipeline", "t-dev-fraud-retraining-pipeline")
    assert pipeline.inputs["pipelineName"] == "t-dev-fraud-train"
    # The SDK-generated definition for the resolved role, bucket, key and offline store.
    expected = pd.pipeline_definition(
        pipeline_name="t-dev-fraud-train", region="eu-west-1", model="fraud", spec=MODEL, training=TrainingConfig(),
        image="img:train", role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-pipeline", training_role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-training",
        features_uri="s3://t-dev-features-111111111111/offline-store/x", artifacts_bucket="t-dev-artifacts-111111111111",
        kms_key="arn:aws:kms:eu-west-1:111111111111:key/k", model_package_group="t-dev-fraud", serving_image="img:serve", network=None,
        sources=SOURCES,
    )
    assert pipeline.inputs["pipelineDefinition"] == expected
    assert [p["Name"] for p in json.loads(expected)["Parameters"]] == ["Trigger", "ShuffleLabels"]
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "t-dev-fraud-retraining-on-alarm")
    assert json.loads(rule.inputs["eventPattern"]) == pd.retrain_event_pattern(ALARMS)
    schema = run.one("aws:s3/bucketObjectv2:BucketObjectv2", "t-dev-fraud-retraining-feature-schema")
    assert (schema.inputs["key"], schema.inputs["serverSideEncryption"]) == ("config/fraud/feature_schema.json", "aws:kms")


def test_alarms_invoke_the_starter_function_which_alone_may_start_the_pipeline(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=ALARMS)
    pipeline = run.one("aws:sagemaker/pipeline:Pipeline", "t-dev-fraud-retraining-pipeline")
    starter = run.one("aws:lambda/function:Function", "t-dev-fraud-retraining-starter")
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "t-dev-fraud-retraining-on-alarm")
    target = run.one("aws:cloudwatch/eventTarget:EventTarget", "t-dev-fraud-retraining-on-alarm-start")
    assert (target.inputs["rule"], target.inputs["arn"]) == (rule.outputs["name"], starter.outputs["arn"])
    assert "roleArn" not in target.inputs and "sagemakerPipelineTarget" not in target.inputs
    permission = run.one("aws:lambda/permission:Permission", "t-dev-fraud-retraining-on-alarm-invoke")
    assert {k: permission.inputs[k] for k in ("action", "function", "principal", "sourceArn")} == {
        "action": "lambda:InvokeFunction", "function": starter.outputs["name"], "principal": "events.amazonaws.com", "sourceArn": rule.outputs["arn"],
    }
    assert permission.urn in run.depends_on(target)  # invoked only once it may be
    role = run.one("aws:iam/role:Role", "t-dev-fraud-retraining-starter-role")
    assert role.inputs["name"] == "t-dev-fraud-retrain"  # the existing role keeps its name
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    logs = run.one("aws:cloudwatch/logGroup:LogGroup", "t-dev-fraud-retraining-starter-logs")
    queue = run.one("aws:sqs/queue:Queue", "t-dev-fraud-retraining-starter-failed")
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "t-dev-fraud-retraining-starter-policy").inputs["policy"])
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]} == {
        "StartThisPipeline": (["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"], [pipeline.outputs["arn"]]),
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], [logs.outputs["arn"], logs.outputs["arn"] + ":*"]),
        "DeadLetterFailedEvents": (["sqs:SendMessage"], [queue.outputs["arn"]]),
        "UseStackKey": (["kms:Decrypt", "kms:GenerateDataKey"], ["arn:aws:kms:eu-west-1:111111111111:key/k"]),
    }


def test_the_starter_runs_one_at_a_time_with_bounded_retries_and_a_dead_letter_queue(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=ALARMS)
    starter = run.one("aws:lambda/function:Function", "t-dev-fraud-retraining-starter")
    i = starter.inputs
    assert (i["name"], i["runtime"], i["handler"], i["reservedConcurrentExecutions"]) == (
        "t-dev-fraud-retrain-starter", "python3.12", "retrain_starter.handler", 1)
    assert i["environment"] == {"variables": {"PIPELINE_NAME": "t-dev-fraud-train"}}
    assert i["kmsKeyArn"] == "arn:aws:kms:eu-west-1:111111111111:key/k"
    assert i["role"] == run.one("aws:iam/role:Role", "t-dev-fraud-retraining-starter-role").outputs["arn"]
    logs = run.one("aws:cloudwatch/logGroup:LogGroup", "t-dev-fraud-retraining-starter-logs")
    assert (logs.inputs["name"], logs.inputs["retentionInDays"], logs.inputs["kmsKeyId"]) == (
        "/aws/lambda/t-dev-fraud-retrain-starter", 90, "arn:aws:kms:eu-west-1:111111111111:key/k")
    queue = run.one("aws:sqs/queue:Queue", "t-dev-fraud-retraining-starter-failed")
    assert (queue.inputs["name"], queue.inputs["kmsMasterKeyId"]) == ("t-dev-fraud-retrain-failed", "arn:aws:kms:eu-west-1:111111111111:key/k")
    config = run.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "t-dev-fraud-retraining-starter-async")
    assert config.inputs["functionName"] == starter.outputs["name"]
    assert (config.inputs["maximumEventAgeInSeconds"], config.inputs["maximumRetryAttempts"]) == (3600, 2)
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": queue.outputs["arn"]}}


def test_a_schedule_invokes_the_starter_without_alarms(mock_pulumi, namer):
    run = _build(mock_pulumi, namer, training=TrainingConfig(schedule="cron(0 3 ? * MON *)"), alarms=[])
    assert run.of_type("aws:cloudwatch/eventRule:EventRule") == []
    assert run.of_type("aws:lambda/permission:Permission") == []
    starter = run.one("aws:lambda/function:Function", "t-dev-fraud-retraining-starter")
    (schedule,) = run.of_type("aws:scheduler/schedule:Schedule")
    assert schedule.inputs["scheduleExpression"] == "cron(0 3 ? * MON *)"
    target = schedule.inputs["target"]
    assert target["arn"] == starter.outputs["arn"]
    role = run.one("aws:iam/role:Role", "t-dev-fraud-retraining-schedule-role")
    assert target["roleArn"] == role.outputs["arn"]
    assert json.loads(target["input"]) == {
        "source": "mlops.schedule", "trigger": "schedule", "schedule_arn": "<aws.scheduler.schedule-arn>",
        "scheduled_time": "<aws.scheduler.scheduled-time>", "execution_id": "<aws.scheduler.execution-id>",
    }
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert (trust["Principal"], trust["Condition"]) == ({"Service": "scheduler.amazonaws.com"}, {"StringEquals": {"aws:SourceAccount": "111111111111"}})
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "t-dev-fraud-retraining-schedule-policy").inputs["policy"])
    assert policy["Statement"] == [{"Sid": "InvokeRetrainStarter", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                                    "Resource": [starter.outputs["arn"], starter.outputs["arn"] + ":*"]}]


def test_retraining_without_any_trigger_is_an_input_error(mock_pulumi, namer):
    problems = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=[], refused=True)
    assert problems == [("trigger_alarms", "model 'fraud': retraining needs a trigger: drift/quality alarms or training.schedule")]


def test_empty_model_name_and_no_trigger_are_reported_together(mock_pulumi, namer):
    problems = _build(mock_pulumi, namer, training=TrainingConfig(), alarms=[], model="", refused=True)
    assert problems == [
        ("model", "must not be empty, got ''"),
        ("trigger_alarms", "model '': retraining needs a trigger: drift/quality alarms or training.schedule"),
    ]


# ---- what the pipeline reads: specs.pipelines.sources ------------------------------------------

def _stack(name: str = "fraud-prod"):
    from specs.config import stack_files
    from specs.naming import Namer

    config = stack_files.load(name)
    return config, Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)


def test_a_served_model_reads_its_endpoints_captures_and_ground_truth_and_faces_the_heaviest_variant():
    from specs import lineage
    from specs.pipelines.sources import retraining_sources

    config, namer = _stack()
    sources = retraining_sources(config, namer, "fraud-detector")
    assert sources.captures == ("s3://fraud-prod-capture-333333333333/datacapture/fraud-prod-scoring",)
    assert sources.ground_truth_uri == "s3://fraud-prod-features-333333333333/ground-truth/fraud-detector/"
    assert sources.label_events_uri is None
    # champion 90, challenger 10: the champion answers most traffic
    assert sources.champions == (("scoring/champion", "s3://fraud-prod-artifacts-333333333333/models/fraud-detector/1/model.tar.gz"),)
    assert sources.feature_group == "fraud-prod-transactions"
    assert sources.config_hash == lineage.config_hash(config, "fraud-detector")


def test_the_heavier_variant_is_the_champion_whichever_its_name():
    from specs.pipelines.sources import retraining_sources

    config, namer = _stack()
    endpoint = config.endpoints["scoring"]
    variants = endpoint.traffic.variants
    swapped = {"champion": variants["champion"].model_copy(update={"weight": 5.0}), "challenger": variants["challenger"]}
    config = config.model_copy(update={"endpoints": {"scoring": endpoint.model_copy(update={
        "traffic": endpoint.traffic.model_copy(update={"variants": swapped})})}})
    assert retraining_sources(config, namer, "fraud-detector").champions == (
        ("scoring/challenger", "s3://fraud-prod-artifacts-333333333333/models/fraud-detector/2/model.tar.gz"),)


def test_a_model_no_endpoint_serves_reads_label_events_and_faces_no_champion():
    from specs.pipelines.sources import retraining_sources

    config, namer = _stack()
    sources = retraining_sources(config.model_copy(update={"endpoints": {}}), namer, "fraud-detector")
    assert (sources.captures, sources.ground_truth_uri, sources.champions) == ((), None, ())
    assert sources.label_events_uri == "s3://fraud-prod-features-333333333333/labels/fraud-detector/label_events.parquet"


@pytest.mark.parametrize("days", [0, 3651, 1.5])
def test_training_window_days_outside_1_to_3650_is_refused(days):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="training_window_days"):
        ModelConfig(feature_group="transactions", label="is_fraud", task="binary_classification", training_window_days=days)
    assert ModelConfig(feature_group="t", label="y", task="binary_classification").training_window_days == 30
