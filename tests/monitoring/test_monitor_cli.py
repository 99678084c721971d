"""The entry point: Model Monitor's bring-your-own-container contract, flags, errors, the process."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from monitor_support import TASK, requests_from, write_captures

from mlops_contracts import metrics
from mlops_serving.monitor import main as main_module
from mlops_serving.monitor.main import main
from mlops_training import synthetic


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("captures")
    write_captures(root, requests_from(synthetic.generate(500, task=TASK, seed=41), start=time.time() - 10,
                                       spacing_s=0.01))
    return root


def contract_env(captures: Path, baseline: Path, tmp_path: Path) -> dict[str, str]:
    """The environment a MonitoringSchedule gives the container (times as AWS's own example writes them)."""
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H: %M: %SZ")
    end = (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H: %M: %SZ")
    return {
        "dataset_format": '{"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}',
        "dataset_source": str(captures),
        "output_path": str(tmp_path / "resultdata"),
        "baseline_statistics": str(baseline),
        "sagemaker_endpoint_name": "fraud",
        "sagemaker_monitoring_schedule_name": "fraud-drift",
        "start_time": start,
        "end_time": end,
        "publish_cloudwatch_metrics": "Enabled",
        # /opt/ml/output is SageMaker's; a test points the same files elsewhere.
        "MLOPS_MONITOR_METRICS_DIR": str(tmp_path / "metrics" / "cloudwatch"),
        "MLOPS_MONITOR_MESSAGE_FILE": str(tmp_path / "output" / "message"),
    }


def test_the_model_monitor_environment_alone_runs_drift_and_writes_metric_files(captures, baseline_path, tmp_path):
    env = contract_env(captures, baseline_path, tmp_path)
    assert main([], environ=env) == 0
    report = json.loads((tmp_path / "resultdata" / "drift_report.json").read_text())
    assert report["rows"] == 500 and report["monitoring_schedule"] == "fraud-drift"
    assert report["window"]["end"] == env["end_time"].replace(" ", "")
    assert sorted(p.name for p in (tmp_path / "resultdata").iterdir()) == [
        "constraint_violations.json", "drift_report.html", "drift_report.json", "statistics.json"]
    lines = (tmp_path / "metrics" / "cloudwatch" / "cloudwatch_metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # PutMetricData's MetricData entries, one per line: Value, never StatisticValues as well.
    assert all(set(r) == {"MetricName", "Timestamp", "Dimensions", "Value", "Unit"} for r in records)
    assert {r["Timestamp"] for r in records} == {env["end_time"].replace(" ", "")}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["Timestamp"]) for r in records)
    assert all({"Name": metrics.ENDPOINT_DIMENSION, "Value": "fraud"} in r["Dimensions"] for r in records)
    names = sorted(r["MetricName"] for r in records)
    assert names == sorted([metrics.FEATURE_PSI] * 5 + [metrics.FEATURE_KS] * 4 +
                           [metrics.MAX_FEATURE_PSI, metrics.DRIFTED_FEATURES, metrics.PREDICTION_PSI])
    assert (tmp_path / "output" / "message").read_text() == "Completed: Job completed successfully with no violations."


def test_the_processing_job_config_supplies_the_contract_when_the_environment_lacks_it(
        captures, baseline_path, tmp_path, monkeypatch):
    env = contract_env(captures, baseline_path, tmp_path)
    config = tmp_path / "processingjobconfig.json"
    config.write_text(json.dumps({"Environment": {k: v for k, v in env.items() if not k.startswith("MLOPS_")}}))
    monkeypatch.setattr(main_module, "PROCESSING_JOB_CONFIG", (str(config),))
    own = {k: v for k, v in env.items() if k.startswith("MLOPS_")}
    assert main([], environ=own) == 0
    assert json.loads((tmp_path / "resultdata" / "drift_report.json").read_text())["rows"] == 500


def test_flags_override_the_environment_and_a_command_may_be_left_out(captures, baseline_path, tmp_path):
    env = contract_env(captures, baseline_path, tmp_path)
    assert main(["--publish", "none", "--out", str(tmp_path / "elsewhere"), "--psi-threshold", "0.0001"],
                environ=env) == 0
    report = json.loads((tmp_path / "elsewhere" / "drift_report.json").read_text())
    assert report["thresholds"]["psi"] == 0.0001 and report["drifted_features"]
    assert not (tmp_path / "metrics").exists()
    assert (tmp_path / "output" / "message").read_text().startswith("CompletedWithViolations: ")


@pytest.mark.parametrize(("argv", "environ", "expected"), [
    (["drift", "--captures", "c", "--out", "o", "--endpoint", "e"], {}, "baseline=''"),
    (["drift", "--captures", "c", "--out", "o", "--endpoint", "e", "--baseline", "b", "--psi-threshold", "-1"], {},
     "psi_threshold=-1.0: allowed a number > 0"),
    (["drift"], {"MLOPS_MONITOR_BATCH_RECORDS": "many"}, "MLOPS_MONITOR_BATCH_RECORDS='many': allowed an integer"),
    (["quality", "--captures", "c", "--out", "o", "--endpoint", "e", "--labels", "l", "--max-rmse", "3"], {},
     "max_rmse=3.0: not a threshold of task binary_classification"),
    (["drift", "--captures", "c", "--out", "o", "--endpoint", "e", "--baseline", "b", "--start", "2026-02-01T00:00:00Z",
      "--end", "2026-01-01T00:00:00Z"], {}, "start=2026-02-01T00:00:00Z is not before end=2026-01-01T00:00:00Z"),
])
def test_bad_settings_exit_2_naming_the_field_and_what_is_allowed(argv, environ, expected, capsys):
    assert main(argv, environ=environ) == 2
    assert expected in capsys.readouterr().err


def test_missing_inputs_exit_2_and_tell_sagemaker_why(captures, tmp_path, capsys):
    env = contract_env(captures, tmp_path / "no-such-baseline.json", tmp_path)
    assert main([], environ=env) == 2
    assert "no-such-baseline.json" in capsys.readouterr().err
    assert "no-such-baseline.json" in (tmp_path / "output" / "failure").read_text()
    env = contract_env(tmp_path / "no-captures", tmp_path / "x", tmp_path)
    (tmp_path / "x").write_text(json.dumps({"format_version": 2, "features": {}}))
    assert main([], environ=env) == 2
    assert "format_version=2 is not supported" in capsys.readouterr().err


def test_the_module_entry_point_runs_as_a_process(captures, baseline_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("dataset_", "MLOPS_MONITOR"))}
    done = subprocess.run(
        [sys.executable, "-m", "mlops_serving.monitor", "drift", "--captures", str(captures), "--baseline",
         str(baseline_path), "--out", str(tmp_path), "--endpoint", "fraud", "--no-html"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == 500 and summary["drifted_features"] == []
    assert not (tmp_path / "drift_report.html").exists()
