"""mlops.local.monitor_metrics: a monitoring job's metric files published as SageMaker publishes them,
into the local CloudWatch (moto's server), with requests valid by botocore's CloudWatch model."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from mlops.local.monitor_metrics import PUT_BATCH, publish_metric_files, put_requests, read_records
from mlops_contracts import metrics

DIMS = [{"Name": "EndpointName", "Value": "t-dev-scoring"}, {"Name": "MonitoringSchedule", "Value": "t-dev-scoring-drift"}]


def write(directory: Path, records: list[dict], name: str = "cloudwatch_metrics.jsonl") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def record(name: str, value: float, *, at: str = "2026-11-22T06:00:00Z", dims: list | None = None) -> dict:
    return {"MetricName": name, "Dimensions": DIMS if dims is None else dims, "Timestamp": at, "Value": value, "Unit": "None"}


def test_put_requests_are_valid_by_botocores_cloudwatch_model_and_batched_by_a_thousand(tmp_path, aws_request_checks):
    write(tmp_path, [record("FeaturePSI", i / 10, dims=[*DIMS, {"Name": "Feature", "Value": f"f{i}"}]) for i in range(PUT_BATCH + 1)])
    requests = put_requests(read_records(tmp_path))
    assert [len(r["MetricData"]) for r in requests] == [PUT_BATCH, 1]
    assert {r["Namespace"] for r in requests} == {"/aws/sagemaker/Endpoint/data-metrics"} == {metrics.MODEL_MONITOR_NAMESPACE}
    client = botocore.session.get_session().create_client("cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    shape = client.meta.service_model.operation_model("PutMetricData").input_shape
    for request in requests:
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), report.generate_report()
        assert aws_request_checks.constraint_problems(request, shape, "PutMetricData") == []


def test_published_records_land_in_model_monitors_namespace_with_their_dimensions(aws, tmp_path):
    at = datetime.now(UTC).replace(microsecond=0)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    write(tmp_path, [record("MaxFeaturePSI", 0.7, at=stamp), record("PredictionPSI", 0.05, at=stamp)])
    write(tmp_path, [record("DriftedFeatureCount", 2, at=stamp)], name="more.jsonl")
    cloudwatch = boto3.client("cloudwatch")
    assert publish_metric_files(cloudwatch, tmp_path) == 3
    listed = cloudwatch.list_metrics(Namespace=metrics.MODEL_MONITOR_NAMESPACE)["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == ["DriftedFeatureCount", "MaxFeaturePSI", "PredictionPSI"]
    assert all(m["Dimensions"] == DIMS for m in listed)
    points = cloudwatch.get_metric_statistics(
        Namespace=metrics.MODEL_MONITOR_NAMESPACE, MetricName="MaxFeaturePSI", Dimensions=DIMS,
        StartTime=at - timedelta(minutes=5), EndTime=at + timedelta(minutes=5), Period=60, Statistics=["Maximum"])["Datapoints"]
    assert [p["Maximum"] for p in points] == [0.7]
    assert cloudwatch.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"] == []


@pytest.mark.parametrize(("line", "message"), [
    ("not json", r"cloudwatch_metrics.jsonl:2: not a JSON object"),
    (json.dumps({"MetricName": "M", "Timestamp": "2026-11-22T06:00:00Z"}), r":2: exactly one of Value and StatisticValues is allowed"),
    (json.dumps({"MetricName": "", "Timestamp": "2026-11-22T06:00:00Z", "Value": 1}), r":2: MetricName is required"),
    (json.dumps({"MetricName": "M", "Timestamp": "yesterday", "Value": 1}), r":2: Timestamp 'yesterday' is not an ISO 8601 time"),
    (json.dumps({"MetricName": "M", "Timestamp": "2026-11-22T06:00:00", "Value": 1}), r":2: Timestamp '2026-11-22T06:00:00' has no time zone"),
    (json.dumps({"MetricName": "M", "Timestamp": "2026-11-22T06:00:00Z", "Value": 1, "Namespace": "x"}),
     r":2: unknown field\(s\) Namespace; allowed MetricName, Timestamp"),
])
def test_a_record_that_is_not_a_metric_data_entry_is_refused_with_its_file_and_line(tmp_path, line, message):
    path = write(tmp_path, [record("MaxFeaturePSI", 0.1)])
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_records(tmp_path)


def test_no_metrics_directory_says_the_job_wrote_no_records(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no metrics directory .*: the job wrote no metric records"):
        read_records(tmp_path / "metrics")
