"""The drift job as its network-isolated schedule runs it: Model Monitor's environment plus the
DriftMonitor's, no PutMetricData, metric records whose names and dimensions are exactly what the drift
alarms watch; then the records published as SageMaker would (mlops.local.monitor_metrics) fire them."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from monitor_support import TASK, drifted, requests_from, write_captures

from components.drift_monitor import job_environment
from mlops.local.alarm_eval import evaluate
from mlops.local.monitor_metrics import publish_metric_files, read_records
from mlops_contracts import metrics
from mlops_serving.monitor.main import main
from mlops_training import synthetic
from specs import alarms
from specs.config.schema import EndpointConfig, Thresholds
from specs.naming import Namer

NAMER = Namer(team="t", environment="dev", account_id="111111111111")
KEY = "scoring"
ENDPOINT = NAMER.endpoint(KEY)
SCHEDULE = NAMER.monitoring_schedule(KEY)


@pytest.fixture(scope="module")
def channel(tmp_path_factory) -> Path:
    """The endpoint input channel Model Monitor fills (`dataset_source`): drifted captures of the endpoint."""
    root = tmp_path_factory.mktemp("endpoint-input")
    table = drifted(synthetic.generate(600, task=TASK, seed=41), seed=42)
    write_captures(root, requests_from(table, start=time.time() - 30, spacing_s=0.01), endpoint=ENDPOINT)
    return root


def drift_alarm_specs() -> list[alarms.AlarmSpec]:
    endpoint = EndpointConfig.model_validate({"model": "fraud", "traffic": {"mode": "single", "variants": {"main": {
        "model_version": 1, "model_data_url": "s3://t-dev-artifacts-111111111111/m/1/model.tar.gz"}}}})
    specs = alarms.endpoint_alarms(namer=NAMER, key=KEY, endpoint=endpoint, thresholds=Thresholds(drift_psi=0.2))
    return [s for s in specs if s.variant is None]


def run_as_scheduled(channel: Path, baseline: Path, out: Path, *, schedule: str | None = SCHEDULE) -> datetime:
    """No command, everything from the environment: how a MonitoringSchedule starts the image. Returns
    the window's end (the metrics' timestamp) once the job has succeeded."""
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    model_monitor = {  # what Model Monitor sets (container contract inputs), pointed at local folders
        "dataset_source": str(channel), "output_path": str(out / "resultdata"), "baseline_statistics": str(baseline),
        "sagemaker_endpoint_name": ENDPOINT,
        "start_time": (end - timedelta(hours=1)).isoformat(), "end_time": end.isoformat(),
        # the container's fixed paths, moved under the test's folder
        "MLOPS_MONITOR_METRICS_DIR": str(out / "metrics"), "MLOPS_MONITOR_MESSAGE_FILE": str(out / "message"),
    }
    if schedule is not None:
        model_monitor["sagemaker_monitoring_schedule_name"] = schedule
    assert main([], environ={**model_monitor, **job_environment(psi_threshold=0.2)}) == 0
    return end


def test_drift_alarms_watch_exactly_the_names_and_dimensions_the_scheduled_job_writes(aws, channel, baseline_path, tmp_path):
    run_as_scheduled(channel, baseline_path, tmp_path)
    # No PutMetricData: CloudWatch holds nothing until the records are published for the job.
    assert boto3.client("cloudwatch").list_metrics()["Metrics"] == []
    records = read_records(tmp_path / "metrics")
    written = {(r["MetricName"], json.dumps(r["Dimensions"], sort_keys=True)) for r in records}
    specs = drift_alarm_specs()
    assert sorted(s.metric for s in specs) == sorted(a.metric for a in alarms.DRIFT_ALARMS)
    for spec in specs:
        assert spec.namespace == metrics.MODEL_MONITOR_NAMESPACE
        dims = [{"Name": k, "Value": v} for k, v in spec.dimensions.items()]
        assert (spec.metric, json.dumps(dims, sort_keys=True)) in written, (spec.metric, spec.dimensions)
    # Every record names the endpoint and the schedule, as AWS recommends for these files.
    assert {tuple(d["Name"] for d in r["Dimensions"])[:2] for r in records} == {metrics.DRIFT_DIMENSIONS}


def _alarms_after_publishing(cloudwatch, metrics_dir: Path, end: datetime) -> list[tuple[str, str]]:
    """Create the drift alarms as specified, publish the job's records as SageMaker would, evaluate."""
    specs = drift_alarm_specs()
    for spec in specs:
        cloudwatch.put_metric_alarm(
            AlarmName=spec.name, Namespace=spec.namespace, MetricName=spec.metric, Statistic=spec.statistic,
            Dimensions=[{"Name": k, "Value": v} for k, v in spec.dimensions.items()], Period=spec.period,
            EvaluationPeriods=spec.evaluation_periods, DatapointsToAlarm=spec.datapoints_to_alarm, Threshold=spec.threshold,
            ComparisonOperator=spec.comparison, TreatMissingData=spec.treat_missing_data)
    assert publish_metric_files(cloudwatch, metrics_dir) == len(read_records(metrics_dir))
    described = cloudwatch.describe_alarms(AlarmNames=[s.name for s in specs])["MetricAlarms"]
    return sorted((t.alarm, t.new) for t in evaluate(cloudwatch, described, now=end + timedelta(seconds=1)))


def test_records_published_as_sagemaker_would_fire_the_drift_alarms(aws, channel, baseline_path, tmp_path):
    end = run_as_scheduled(channel, baseline_path, tmp_path)
    fired = _alarms_after_publishing(boto3.client("cloudwatch"), tmp_path / "metrics", end)
    assert fired == sorted((s.name, "ALARM") for s in drift_alarm_specs())


def test_a_run_without_its_schedules_name_writes_metrics_no_drift_alarm_watches(aws, channel, baseline_path, tmp_path):
    """The alarms match the schedule dimension exactly: the same drift, written without it, fires nothing."""
    end = run_as_scheduled(channel, baseline_path, tmp_path, schedule=None)
    records = read_records(tmp_path / "metrics")
    assert records and not [r for r in records if metrics.SCHEDULE_DIMENSION in {d["Name"] for d in r["Dimensions"]}]
    fired = _alarms_after_publishing(boto3.client("cloudwatch"), tmp_path / "metrics", end)
    assert [alarm for alarm, state in fired if state == "ALARM"] == []


def test_the_local_stand_in_for_isolation_refuses_aws_and_the_drift_job_does_not_need_it(aws, channel, baseline_path, tmp_path):
    """mlops.local.demo runs the drift job with `isolated_job_environment`: reading captures from S3
    fails there (so the stand-in refuses AWS), the job on its local channels succeeds."""
    import os
    import subprocess
    import sys

    from mlops.local.demo import isolated_job_environment

    env = isolated_job_environment(dict(os.environ), region="eu-west-1")
    boto3.client("s3").create_bucket(Bucket="caps", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    command = [str(Path(sys.executable).parent / "mlops-monitor"), "drift", "--baseline", str(baseline_path),
               "--endpoint", ENDPOINT, "--monitoring-schedule", SCHEDULE, "--publish", "file"]
    refused = subprocess.run([*command, "--captures", "s3://caps/datacapture", "--out", str(tmp_path / "a"),
                              "--metrics-dir", str(tmp_path / "a-metrics")], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Could not connect to the endpoint URL" in refused.stderr, refused.stderr[-1000:]
    done = subprocess.run([*command, "--captures", str(channel), "--out", str(tmp_path / "b"),
                           "--metrics-dir", str(tmp_path / "b-metrics")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1000:]
    assert read_records(tmp_path / "b-metrics")
