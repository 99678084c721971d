"""The live-quality job's metrics against scikit-learn's on the same labels (classification and
regression, multi-row requests, ties), and the job's window under a MonitoringSchedule."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from monitor_support import Request, ground_truth_lines, write_captures
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error, r2_score, roc_auc_score

from mlops_serving.monitor.main import main
from mlops_serving.monitor.quality import classification_metrics, regression_metrics

ROW = [10.0, 2, "de", 12, 300]


def _write_labels(path: Path, labels: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(ground_truth_lines(labels)) + "\n")


def _job(tmp_path: Path, requests: list[Request], labels: dict[str, list], *extra: str) -> dict:
    write_captures(tmp_path / "captures", requests)
    _write_labels(tmp_path / "labels" / "gt.jsonl", labels)
    status = main(["quality", "--captures", str(tmp_path / "captures"), "--labels", str(tmp_path / "labels"),
                   "--out", str(tmp_path / "out"), "--endpoint", "fraud", *extra], environ={})
    assert status == 0
    return json.loads((tmp_path / "out" / "quality_report.json").read_text())["variants"]["champion"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 700).astype(float)
    p = np.round(np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.3, 700), 0, 1), 2)  # ties, 0 and 1 included
    got = classification_metrics(y, p, threshold=0.5)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5), abs=1e-12)
    eps = np.finfo(np.float64).eps  # scikit-learn clips at the dtype's eps as the job does
    assert got["log_loss"] == pytest.approx(log_loss(y, np.clip(p, eps, 1 - eps)), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 20, 500)
    p = y + rng.normal(0, 5, 500)
    got = regression_metrics(y, p)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-12)
    assert got["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(y, p), rel=1e-12)


def test_the_whole_job_on_multi_row_requests_equals_scikit_learn_on_the_joined_labels(tmp_path):
    rng = np.random.default_rng(9)
    now = time.time()
    requests, labels, ys, ps = [], {}, [], []
    for k in range(150):
        rows = int(rng.integers(1, 4))
        y = rng.integers(0, 2, rows).tolist()
        p = [round(float(np.clip(0.5 + (v - 0.5) * 0.4 + rng.normal(0, 0.25), 0.001, 0.999)), 3) for v in y]
        requests.append(Request(f"r-{k}", [ROW] * rows, p, now - 300 + k))
        if k % 5:  # every fifth request is never labelled
            labels[f"r-{k}"] = y
            ys += y
            ps += p
    got = _job(tmp_path, requests, labels)
    assert got["labeled_rows"] == len(ys)
    assert got["metrics"]["auc"] == pytest.approx(roc_auc_score(ys, ps), abs=1e-12)
    assert got["metrics"]["accuracy"] == pytest.approx(accuracy_score(ys, np.array(ps) >= 0.5), abs=1e-12)
    assert got["metrics"]["log_loss"] == pytest.approx(log_loss(ys, ps), rel=1e-9)


def test_the_whole_regression_job_equals_scikit_learn(tmp_path):
    rng = np.random.default_rng(4)
    now = time.time()
    y = rng.normal(50, 10, 200)
    p = y + rng.normal(0, 3, 200)
    requests = [Request(f"q-{k}", [ROW], [float(p[k])], now - 300 + k) for k in range(200)]
    got = _job(tmp_path, requests, {f"q-{k}": [float(y[k])] for k in range(200)}, "--task", "regression")
    assert got["metrics"]["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9)
    assert got["metrics"]["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
    assert got["metrics"]["r2"] == pytest.approx(r2_score(y, p), rel=1e-9)


def test_under_a_schedule_the_window_reaches_window_hours_back_from_end_time_not_model_monitors_start_time(tmp_path):
    """Model Monitor passes the last hour as start_time/end_time; labels come later, so the quality job
    joins the predictions of `MLOPS_MONITOR_WINDOW_HOURS` before end_time."""
    end = datetime.now(UTC).replace(microsecond=0)
    requests = [Request(f"w-{k}", [ROW], [0.9 if k % 2 else 0.1], (end - timedelta(hours=5, minutes=k)).timestamp()) for k in range(120)]
    write_captures(tmp_path / "captures", requests)
    _write_labels(tmp_path / "labels" / "gt.jsonl", {f"w-{k}": [k % 2] for k in range(120)})
    environ = {
        "dataset_source": str(tmp_path / "ignored"), "output_path": str(tmp_path / "out"), "sagemaker_endpoint_name": "fraud",
        "start_time": (end - timedelta(hours=1)).isoformat(), "end_time": end.isoformat(),
        "MLOPS_MONITOR_CAPTURES": str(tmp_path / "captures"), "MLOPS_MONITOR_LABELS": str(tmp_path / "labels"),
        "MLOPS_MONITOR_WINDOW_HOURS": "24",
    }
    assert main(["quality"], environ=environ) == 0
    report = json.loads((tmp_path / "out" / "quality_report.json").read_text())
    assert report["window"]["start"] == (end - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert report["variants"]["champion"]["labeled_rows"] == 120
    assert report["variants"]["champion"]["metrics"]["auc"] == 1.0


def test_under_a_schedule_the_contract_comes_from_the_processing_job_config_when_the_environment_lacks_it(tmp_path, monkeypatch):
    from mlops_serving.monitor import main as main_module

    end = datetime.now(UTC).replace(microsecond=0)
    requests = [Request(f"c-{k}", [ROW], [0.8 if k % 2 else 0.3], (end - timedelta(hours=2, seconds=k)).timestamp()) for k in range(100)]
    write_captures(tmp_path / "captures", requests)
    _write_labels(tmp_path / "labels" / "gt.jsonl", {f"c-{k}": [k % 2] for k in range(100)})
    config = tmp_path / "processingjobconfig.json"
    config.write_text(json.dumps({"Environment": {
        "dataset_source": "/opt/ml/processing/input/endpoint", "output_path": str(tmp_path / "out"),
        "sagemaker_endpoint_name": "fraud", "start_time": (end - timedelta(hours=1)).isoformat(), "end_time": end.isoformat()}}))
    monkeypatch.setattr(main_module, "PROCESSING_JOB_CONFIG", (str(config),))
    own = {"MLOPS_MONITOR_CAPTURES": str(tmp_path / "captures"), "MLOPS_MONITOR_LABELS": str(tmp_path / "labels"),
           "MLOPS_MONITOR_WINDOW_HOURS": "24"}
    assert main(["quality"], environ=own) == 0
    report = json.loads((tmp_path / "out" / "quality_report.json").read_text())
    assert report["endpoint"] == "fraud" and report["window"]["end"] == end.isoformat().replace("+00:00", "Z")
    assert report["variants"]["champion"]["labeled_rows"] == 100
