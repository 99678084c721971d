"""DriftMonitor: the monitoring job as a Model Monitor schedule over an endpoint's captures."""
from __future__ import annotations

from components.drift_monitor import ENTRYPOINT, TOKEN, DriftMonitor, DriftMonitorArgs, baseline_uri, job_environment

URL = "s3://t-dev-artifacts-111111111111/models/fraud/3/model.tar.gz"


def test_baseline_sits_beside_the_champions_model_archive():
    assert baseline_uri(URL) == "s3://t-dev-artifacts-111111111111/models/fraud/3/baseline.json"


def test_job_environment_carries_the_metric_and_dimension_names_the_alarms_watch():
    env = job_environment(psi_threshold=0.25)
    assert env["MLOPS_MONITOR_PSI_THRESHOLD"] == "0.25"
    assert (env["MLOPS_METRIC_MAX_FEATURE_PSI"], env["MLOPS_METRIC_PREDICTION_PSI"]) == ("MaxFeaturePSI", "PredictionPSI")
    assert (env["MLOPS_DIMENSION_ENDPOINT"], env["MLOPS_DIMENSION_SCHEDULE"]) == ("EndpointName", "MonitoringSchedule")


def test_job_environment_selects_model_monitors_metric_files_and_nothing_that_calls_cloudwatch():
    """SageMaker publishes the files (its namespace, not one the job names); MLOPS_MONITOR_PUBLISH would
    take precedence over the switch (mlops_serving.monitor.main), so it must be absent."""
    from mlops_serving.monitor.main import build_parser, drift_settings

    env = job_environment(psi_threshold=0.25)
    assert env["publish_cloudwatch_metrics"] == "Enabled"
    assert "MLOPS_MONITOR_PUBLISH" not in env and "MLOPS_MONITOR_NAMESPACE" not in env
    contract = {"dataset_source": "/opt/ml/processing/input/endpoint", "output_path": "/opt/ml/processing/resultdata",
                "baseline_statistics": "/opt/ml/processing/baseline/stats/baseline.json",
                "sagemaker_endpoint_name": "t-dev-scoring", "sagemaker_monitoring_schedule_name": "t-dev-scoring-drift"}
    settings = drift_settings(build_parser().parse_args(["drift"]), {**contract, **env})
    assert settings.publish == ("file",)
    assert (settings.monitoring_schedule, settings.metrics_dir) == ("t-dev-scoring-drift", "/opt/ml/output/metrics/cloudwatch")


def _monitor(namer, tags: dict[str, str], *, key: str = "scoring", psi_threshold: float = 0.2) -> DriftMonitor:
    return DriftMonitor("t-dev-scoring-drift", DriftMonitorArgs(
        namer=namer, key=key, endpoint_name="t-dev-scoring", baseline_model_data_url=URL, image="img:serve",
        schedule="cron(0 * ? * * *)", instance_type="ml.m5.large", psi_threshold=psi_threshold,
        role_arn="arn:aws:iam::111111111111:role/t-dev-sagemaker-execution", kms_key_arn="arn:aws:kms:eu-west-1:111111111111:key/k",
        capture_bucket="t-dev-capture-111111111111", tags=tags,
    ))


def test_empty_key_and_a_non_positive_psi_threshold_are_reported_together(mock_pulumi, namer):
    problems = mock_pulumi.refused(lambda: _monitor(namer, mock_pulumi.tags, key="", psi_threshold=0.0))
    assert problems == [("key", "must not be empty, got ''"), ("psi_threshold", "must be greater than 0, got 0.0")]


def test_schedule_runs_the_serving_images_monitor_entrypoint_isolated_and_encrypted(mock_pulumi, namer):
    run = mock_pulumi.run(lambda: _monitor(namer, mock_pulumi.tags))
    (schedule,) = run.children(mock_pulumi.top_urn(TOKEN, "t-dev-scoring-drift"))
    assert schedule.type == "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
    assert schedule.inputs["name"] == "t-dev-scoring-drift"
    config = schedule.inputs["monitoringScheduleConfig"]
    job = config["monitoringJobDefinition"]
    assert config["scheduleConfig"] == {"scheduleExpression": "cron(0 * ? * * *)"}
    assert job["monitoringAppSpecification"] == {"imageUri": "img:serve", "containerEntrypoints": ENTRYPOINT}
    assert job["monitoringInputs"]["endpointInput"] == {"endpointName": "t-dev-scoring", "localPath": "/opt/ml/processing/input/endpoint"}
    assert job["baseline"] == {"statisticsResource": {"s3Uri": "s3://t-dev-artifacts-111111111111/models/fraud/3/baseline.json"}}
    assert job["networkConfig"] == {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True}
    assert job["environment"] == job_environment(psi_threshold=0.2)
    assert job["monitoringOutputConfig"]["kmsKeyId"] == job["monitoringResources"]["clusterConfig"]["volumeKmsKeyId"] == "arn:aws:kms:eu-west-1:111111111111:key/k"
    assert job["monitoringOutputConfig"]["monitoringOutputs"]["s3Output"]["s3Uri"] == "s3://t-dev-capture-111111111111/monitoring/t-dev-scoring"


def test_the_drift_schedules_create_request_is_isolated_and_valid_by_botocores_model(shipped_plan, aws_request_checks):
    """The request `pulumi up` sends for the isolated drift schedule, as the local realizer translates it
    from the plan, checked against botocore's SageMaker model (types, required members, patterns, enums)."""
    import botocore.session
    from botocore.validate import ParamValidator

    from mlops.local.realize import api_calls

    plan = shipped_plan("fraud-prod")
    (schedule,) = [r for r in plan.of_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule") if r.name.endswith("-drift-schedule")]
    (call,) = api_calls(schedule, "eu-west-1")
    definition = call.params["MonitoringScheduleConfig"]["MonitoringJobDefinition"]
    assert definition["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert definition["Environment"]["publish_cloudwatch_metrics"] == "Enabled"
    assert "MLOPS_MONITOR_PUBLISH" not in definition["Environment"]
    client = botocore.session.get_session().create_client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    shape = client.meta.service_model.operation_model("CreateMonitoringSchedule").input_shape
    report = ParamValidator().validate(call.params, shape)
    assert not report.has_errors(), report.generate_report()
    assert aws_request_checks.constraint_problems(call.params, shape, "CreateMonitoringSchedule") == []
