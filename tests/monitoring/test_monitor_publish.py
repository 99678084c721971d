"""Metrics reach CloudWatch (moto's server) where the drift alarms look; captures, baseline and
reports in S3."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from monitor_support import TASK, requests_from, write_captures

from specs.alarms import DRIFT_ALARMS
from mlops_contracts import metrics
from mlops_serving.monitor.main import main
from mlops_serving.monitor.settings import MetricNames
from mlops_training import synthetic


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("captures")
    table = synthetic.generate(1500, task=TASK, seed=31)
    write_captures(root, requests_from(table, start=time.time() - 30, spacing_s=0.01))
    return root


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def stat(cloudwatch, name: str, dims: dict[str, str], *, namespace: str = metrics.NAMESPACE) -> float:
    start, end = window()
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=start - timedelta(hours=1), EndTime=end + timedelta(hours=1), Period=60, Statistics=["Maximum"],
    )["Datapoints"]
    assert len(points) == 1, (name, dims, points)
    return points[0]["Maximum"]


def test_metric_names_default_to_the_ones_the_alarms_watch():
    names = MetricNames()
    assert (names.namespace, names.feature_psi, names.feature_ks, names.max_feature_psi, names.drifted_features,
            names.prediction_psi, names.live_prefix) == (
        metrics.NAMESPACE, metrics.FEATURE_PSI, metrics.FEATURE_KS, metrics.MAX_FEATURE_PSI,
        metrics.DRIFTED_FEATURES, metrics.PREDICTION_PSI, metrics.LIVE_METRIC_PREFIX)
    assert (names.endpoint_dimension, names.feature_dimension, names.variant_dimension) == (
        metrics.ENDPOINT_DIMENSION, metrics.FEATURE_DIMENSION, metrics.VARIANT_DIMENSION)
    assert {a.metric for a in DRIFT_ALARMS} <= {names.max_feature_psi, names.prediction_psi}


def test_drift_metrics_reach_cloudwatch_under_the_drift_alarms_namespace_and_dimensions(
        aws, baseline_path, captures, tmp_path):
    start, end = window()
    status = main(["drift", "--captures", str(captures), "--baseline", str(baseline_path), "--out", str(tmp_path),
                   "--endpoint", "fraud", "--publish", "cloudwatch",
                   "--start", start.isoformat(), "--end", end.isoformat()], environ={})
    assert status == 0
    report = json.loads((tmp_path / "drift_report.json").read_text())
    cloudwatch = boto3.client("cloudwatch")
    endpoint = {metrics.ENDPOINT_DIMENSION: "fraud"}
    # Exactly what each drift alarm of specs/alarms.py watches: namespace, metric, dimensions.
    for alarm in DRIFT_ALARMS:
        expected = report["max_feature_psi"] if alarm.metric == metrics.MAX_FEATURE_PSI else report["prediction"]["psi"]
        assert stat(cloudwatch, alarm.metric, endpoint) == pytest.approx(expected, rel=1e-12)
    assert stat(cloudwatch, metrics.DRIFTED_FEATURES, endpoint) == 0
    for name in ("amount", "country"):
        dims = {**endpoint, metrics.FEATURE_DIMENSION: name}
        assert stat(cloudwatch, metrics.FEATURE_PSI, dims) == pytest.approx(report["features"][name]["psi"], rel=1e-12)
    listed = cloudwatch.list_metrics(Namespace=metrics.NAMESPACE, MetricName=metrics.FEATURE_KS)["Metrics"]
    ks_features = sorted(d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == metrics.FEATURE_DIMENSION)
    assert ks_features == ["account_age_days", "amount", "hour", "n_items"]  # no KS for a String feature


def test_namespace_and_metric_names_come_from_the_environment(aws, baseline_path, captures, tmp_path):
    env = {"MLOPS_MONITOR_NAMESPACE": "Team/Drift", "MLOPS_METRIC_MAX_FEATURE_PSI": "WorstPSI",
           "MLOPS_DIMENSION_ENDPOINT": "Endpoint", "MLOPS_MONITOR_PUBLISH": "cloudwatch"}
    status = main(["drift", "--captures", str(captures), "--baseline", str(baseline_path), "--out", str(tmp_path),
                   "--endpoint", "fraud"], environ=env)
    assert status == 0
    report = json.loads((tmp_path / "drift_report.json").read_text())
    cloudwatch = boto3.client("cloudwatch")
    assert stat(cloudwatch, "WorstPSI", {"Endpoint": "fraud"}, namespace="Team/Drift") == pytest.approx(
        report["max_feature_psi"], rel=1e-12)
    assert cloudwatch.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"] == []


def test_captures_baseline_and_reports_in_s3_give_the_local_result(aws, baseline_path, captures, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="team-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in captures.rglob("*.jsonl"):
        s3.upload_file(str(path), "team-data", f"capture/{path.relative_to(captures).as_posix()}")
    s3.upload_file(str(baseline_path), "team-data", "models/v1/baseline.json")
    start, end = window()
    flags = ["--endpoint", "fraud", "--start", start.isoformat(), "--end", end.isoformat()]
    assert main(["drift", "--captures", "s3://team-data/capture", "--baseline", "s3://team-data/models/v1/baseline.json",
                 "--out", "s3://team-data/reports/run-1", *flags], environ={}) == 0
    assert main(["drift", "--captures", str(captures), "--baseline", str(baseline_path), "--out", str(tmp_path),
                 *flags], environ={}) == 0
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="team-data", Prefix="reports/")["Contents"])
    assert keys == [f"reports/run-1/{n}" for n in ("constraint_violations.json", "drift_report.html",
                                                    "drift_report.json", "statistics.json")]
    remote = json.loads(s3.get_object(Bucket="team-data", Key="reports/run-1/drift_report.json")["Body"].read())
    local = json.loads((tmp_path / "drift_report.json").read_text())
    assert remote["rows"] == local["rows"] == 1500
    assert remote["features"] == local["features"] and remote["prediction"] == local["prediction"]
