"""QualityMonitor: the live-quality job as a Model Monitor schedule over an endpoint's captures and its
model's ground truth, and its place in the stack."""
from __future__ import annotations

from components.quality_monitor import ENTRYPOINT, MONITORING_TYPE, TOKEN, QualityMonitor, QualityMonitorArgs, job_environment

KEY = "arn:aws:kms:eu-west-1:111111111111:key/k"
TRUTH = "s3://t-dev-features-111111111111/ground-truth/fraud/"


def test_job_environment_names_captures_labels_task_window_and_the_alarms_metric_names():
    env = job_environment(captures_root="s3://cap/datacapture", ground_truth_uri=TRUTH, task="regression", window_hours=12)
    assert (env["MLOPS_MONITOR_CAPTURES"], env["MLOPS_MONITOR_LABELS"], env["MLOPS_MONITOR_TASK"], env["MLOPS_MONITOR_WINDOW_HOURS"]) == (
        "s3://cap/datacapture", TRUTH, "regression", "12")
    assert env["MLOPS_MONITOR_PUBLISH"] == "cloudwatch"
    assert (env["MLOPS_MONITOR_NAMESPACE"], env["MLOPS_METRIC_LIVE_PREFIX"]) == ("MLOps/ModelMonitor", "Live")
    # no degradation thresholds: the alarms judge, a crossed threshold must not fail the execution
    assert not [k for k in env if k.startswith(("MLOPS_MONITOR_MIN_", "MLOPS_MONITOR_MAX_"))]


def _monitor(namer, tags: dict[str, str], **changes) -> QualityMonitor:
    args = dict(
        namer=namer, key="scoring", endpoint_name="t-dev-scoring", captures_root="s3://t-dev-capture-111111111111/datacapture",
        ground_truth_uri=TRUTH, task="binary_classification", image="img:serve", schedule="cron(30 * ? * * *)",
        instance_type="ml.m5.large", role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-execution", kms_key_arn=KEY,
        report_bucket="t-dev-capture-111111111111", tags=tags,
    )
    args.update(changes)
    return QualityMonitor("t-dev-scoring-quality", QualityMonitorArgs(**args))


def test_bad_key_task_ground_truth_and_window_are_reported_together(mock_pulumi, namer):
    problems = mock_pulumi.refused(lambda: _monitor(namer, mock_pulumi.tags, key="", task="ranking",
                                                    ground_truth_uri="/tmp/labels", window_hours=0))
    assert problems == [
        ("key", "must not be empty, got ''"),
        ("task", "allowed binary_classification, regression, got 'ranking'"),
        ("ground_truth_uri", "must be an s3:// URI, got '/tmp/labels'"),
        ("window_hours", "allowed 0 < hours <= 720, got 0"),
    ]


def test_schedule_runs_the_serving_images_quality_command_over_captures_and_ground_truth(mock_pulumi, namer):
    run = mock_pulumi.run(lambda: _monitor(namer, mock_pulumi.tags))
    (schedule,) = run.children(mock_pulumi.top_urn(TOKEN, "t-dev-scoring-quality"))
    assert schedule.type == "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
    assert schedule.inputs["name"] == "t-dev-scoring-quality"
    assert schedule.inputs["tags"] == mock_pulumi.tags
    config = schedule.inputs["monitoringScheduleConfig"]
    job = config["monitoringJobDefinition"]
    assert config["monitoringType"] == MONITORING_TYPE == "ModelQuality"
    assert config["scheduleConfig"] == {"scheduleExpression": "cron(30 * ? * * *)"}
    assert job["monitoringAppSpecification"] == {"imageUri": "img:serve", "containerEntrypoints": ["mlops-monitor", "quality"]}
    assert ENTRYPOINT == ["mlops-monitor", "quality"]
    assert job["environment"]["MLOPS_MONITOR_LABELS"] == TRUTH
    assert job["environment"]["MLOPS_MONITOR_CAPTURES"] == "s3://t-dev-capture-111111111111/datacapture"
    assert job["environment"]["MLOPS_MONITOR_TASK"] == "binary_classification"
    assert job["monitoringInputs"]["endpointInput"]["endpointName"] == "t-dev-scoring"
    # Not isolated: it reads labels and a 24-hour capture window from S3 (quality_monitor.py says why).
    assert job["networkConfig"] == {"enableNetworkIsolation": False, "enableInterContainerTrafficEncryption": True}
    assert job["monitoringOutputConfig"]["kmsKeyId"] == job["monitoringResources"]["clusterConfig"]["volumeKmsKeyId"] == KEY
    assert job["monitoringOutputConfig"]["monitoringOutputs"]["s3Output"]["s3Uri"] == "s3://t-dev-capture-111111111111/monitoring-quality/t-dev-scoring"
    assert job["roleArn"] == "arn:aws:iam::111111111111:role/t-dev-sagemaker-execution"


def test_shipped_stack_schedules_quality_on_the_models_ground_truth_and_the_role_reads_it(shipped_plan):
    plan = shipped_plan("fraud-prod")
    (schedule,) = [r for r in plan.of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule") if r.name.endswith("-quality-schedule")]
    job = schedule.inputs["monitoringScheduleConfig"]["monitoringJobDefinition"]
    env = job["environment"]
    assert env["MLOPS_MONITOR_LABELS"] == "s3://fraud-prod-features-333333333333/ground-truth/fraud-detector/"
    assert env["MLOPS_MONITOR_CAPTURES"] == "s3://fraud-prod-capture-333333333333/datacapture"
    assert schedule.inputs["monitoringScheduleConfig"]["scheduleConfig"] == {"scheduleExpression": "cron(30 * ? * * *)"}
    execution_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name == "fraud-prod-monitoring-role")
    assert job["roleArn"] == f"arn:aws:iam::333333333333:role/{execution_role.inputs['name']}"


def _allows(policy: dict, action: str, resource: str) -> bool:
    """An Allow statement names `action` on `resource` exactly or through a trailing `*`."""
    for s in policy["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if s["Effect"] == "Allow" and action in actions and any(
                r == resource or (r.endswith("*") and resource.startswith(r[:-1])) for r in resources):
            return True
    return False


def test_the_quality_jobs_role_lists_and_reads_the_ground_truth_and_the_captures(shipped_plan):
    import json

    plan = shipped_plan("fraud-prod")
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "fraud-prod-monitoring-policy"]
    document = json.loads(policy.inputs["policy"])
    for bucket in ("fraud-prod-features-333333333333", "fraud-prod-capture-333333333333"):
        assert _allows(document, "s3:ListBucket", f"arn:aws:s3:::{bucket}")
    assert _allows(document, "s3:GetObject", "arn:aws:s3:::fraud-prod-features-333333333333/ground-truth/fraud-detector/2026/11/22/06/x.jsonl")
    assert _allows(document, "s3:GetObject", "arn:aws:s3:::fraud-prod-capture-333333333333/datacapture/fraud-prod-scoring/AllTraffic/x.jsonl")
    assert not _allows(document, "s3:GetObject", "arn:aws:s3:::another-bucket/ground-truth/x.jsonl")


def test_the_quality_schedules_create_request_is_valid_by_botocores_model(shipped_plan):
    """The request `pulumi up` sends for the schedule, as the local realizer translates it from the
    plan, checked against botocore's SageMaker model (types, required members, patterns, enums)."""
    import importlib.util
    from pathlib import Path

    import botocore.session
    from botocore.validate import ParamValidator

    from mlops.local.realize import api_calls

    spec = importlib.util.spec_from_file_location("_checks", Path(__file__).with_name("test_aws_requests.py"))
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    plan = shipped_plan("fraud-prod")
    (schedule,) = [r for r in plan.of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule") if r.name.endswith("-quality-schedule")]
    (call,) = api_calls(schedule, "eu-west-1")
    assert call.params["MonitoringScheduleConfig"]["MonitoringType"] == "ModelQuality"
    assert call.params["MonitoringScheduleConfig"]["MonitoringJobDefinition"]["MonitoringAppSpecification"]["ContainerEntrypoint"] == [
        "mlops-monitor", "quality"]
    client = botocore.session.get_session().create_client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    shape = client.meta.service_model.operation_model("CreateMonitoringSchedule").input_shape
    report = ParamValidator().validate(call.params, shape)
    assert not report.has_errors(), report.generate_report()
    assert checks.constraint_problems(call.params, shape, "CreateMonitoringSchedule") == []
