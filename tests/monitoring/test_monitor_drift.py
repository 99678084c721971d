"""The drift job end to end on captures written by the serving container's CaptureWriter and a
baseline computed by the training container's code."""
from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import numpy as np
import pytest
from monitor_support import TASK, drifted, requests_from, rows_of, write_captures, write_model_tar

from mlops_serving.monitor import drift as drift_job
from mlops_serving.monitor.main import main
from mlops_serving.monitor.report import render_drift
from mlops_serving.monitor.stats import psi
from mlops_training import synthetic
from mlops_training.baseline import bin_index

scipy_stats = pytest.importorskip("scipy.stats")


def recent(table, **kwargs):
    """Requests timed in the last few seconds, as the server would have captured them."""
    n = -(-table.num_rows // kwargs.get("rows_per_request", 5))
    return requests_from(table, start=time.time() - n * 0.001 - 1, spacing_s=0.001, **kwargs)


def run_drift(captures: Path, baseline: Path, out: Path, *extra: str) -> dict:
    status = main(["drift", "--captures", str(captures), "--baseline", str(baseline), "--out", str(out),
                   "--endpoint", "fraud", *extra], environ={})
    assert status == 0
    return json.loads((out / "drift_report.json").read_text())


@pytest.fixture(scope="module")
def undrifted_table():
    return synthetic.generate(3000, task=TASK, seed=101)


@pytest.fixture(scope="module")
def undrifted_captures(tmp_path_factory, undrifted_table) -> Path:
    root = tmp_path_factory.mktemp("undrifted")
    write_captures(root, recent(undrifted_table))
    return root


def test_undrifted_and_drifted_captures_are_told_apart_with_the_default_thresholds(
        baseline_path, undrifted_captures, tmp_path):
    calm = run_drift(undrifted_captures, baseline_path, tmp_path / "calm")
    assert calm["rows"] == 3000 and calm["capture"]["records"] == 600 and calm["capture"]["malformed"] == 0
    assert calm["drifted_features"] == [] and calm["violations"] == []
    assert calm["max_feature_psi"] < 0.05
    assert not calm["prediction"]["drifted"]

    shifted_root = tmp_path / "shifted-captures"
    write_captures(shifted_root, recent(drifted(synthetic.generate(3000, task=TASK, seed=102), seed=5)))
    shifted = run_drift(shifted_root, baseline_path, tmp_path / "shifted")
    assert shifted["drifted_features"] == ["amount", "country"]
    assert shifted["features"]["amount"]["ks"] > 0.3
    assert set(shifted["features"]["country"]["new_categories"]) == {"br"}
    assert shifted["prediction"]["drifted"]
    checks = {(v["feature_name"], v["constraint_check_type"]) for v in shifted["violations"]}
    assert checks == {("amount", "baseline_drift_check"), ("country", "baseline_drift_check"),
                      ("country", "categorical_values_check"), ("prediction", "baseline_drift_check")}
    out = tmp_path / "shifted"
    assert json.loads((out / "constraint_violations.json").read_text()) == {"violations": shifted["violations"]}
    statistics = json.loads((out / "statistics.json").read_text())
    assert statistics["dataset"] == {"item_count": 3000}
    assert [f["name"] for f in statistics["features"]] == ["amount", "n_items", "country", "hour", "account_age_days"]
    assert 'class="drifted">amount' in (out / "drift_report.html").read_text()


def test_psi_ks_and_null_rates_equal_a_direct_computation_on_the_captured_rows(
        baseline_path, undrifted_captures, undrifted_table, tmp_path):
    report = run_drift(undrifted_captures, baseline_path, tmp_path)
    base = json.loads(baseline_path.read_text())
    for name in ("amount", "n_items", "hour", "account_age_days"):
        values = undrifted_table.column(name).to_numpy(zero_copy_only=False).astype(float)
        present = values[~np.isnan(values)]
        edges = np.array(base["features"][name]["bin_edges"])
        shares = np.bincount(bin_index(edges, present), minlength=10) / present.size
        entry = report["features"][name]
        assert entry["psi"] == pytest.approx(psi(base["features"][name]["bin_frequencies"], shares), abs=1e-12)
        assert entry["ks"] == pytest.approx(
            scipy_stats.ks_2samp(base["features"][name]["sample"], present).statistic, abs=1e-12)
        assert entry["null_rate"] == pytest.approx(1 - present.size / values.size, abs=1e-12)
    country = [c for c in undrifted_table.column("country").to_pylist() if c is not None]
    freqs = base["features"]["country"]["category_frequencies"]
    current = [country.count(c) / len(country) for c in freqs] + [0.0]
    assert report["features"]["country"]["psi"] == pytest.approx(psi([*freqs.values(), 0.0], current), abs=1e-12)


def test_schema_in_model_tar_orders_positional_rows_whatever_the_baselines_key_order(
        baseline_path, undrifted_captures, tmp_path):
    doc = json.loads(baseline_path.read_text())
    doc["features"] = dict(reversed(list(doc["features"].items())))
    reversed_path = tmp_path / "baseline.json"
    reversed_path.write_text(json.dumps(doc))
    archive = write_model_tar(tmp_path, reversed_path)
    report = run_drift(undrifted_captures, archive, tmp_path / "out")
    assert report["baseline"]["column_order_from"] == "schema.json"
    assert list(report["features"]) == ["amount", "n_items", "country", "hour", "account_age_days"]
    assert report["drifted_features"] == [] and report["capture"]["malformed"] == 0


def test_only_records_inside_the_window_count_and_the_rest_are_reported(baseline_path, undrifted_table, tmp_path):
    now = datetime.now(UTC)
    old = requests_from(undrifted_table.slice(0, 1000), start=(now - timedelta(hours=2)).timestamp(), spacing_s=0.01)
    new = requests_from(undrifted_table.slice(1000, 1000), start=(now - timedelta(minutes=5)).timestamp(),
                        spacing_s=0.01, id_prefix="new")
    write_captures(tmp_path / "captures", old + new)
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = run_drift(tmp_path / "captures", baseline_path, tmp_path / "out", "--start", start, "--end", end)
    assert report["rows"] == 1000
    assert report["capture"]["records"] == 200 and report["capture"]["outside_window"] == 200
    assert report["window"] == {"start": start, "end": end}


def test_unreadable_lines_and_bodies_are_counted_and_the_rest_is_used(baseline_path, undrifted_table, tmp_path):
    write_captures(tmp_path / "captures", recent(undrifted_table.slice(0, 100)))
    [capture_file] = list((tmp_path / "captures").rglob("*.jsonl"))
    good = json.loads(capture_file.read_text().splitlines()[0])
    good["captureData"]["endpointInput"]["data"] = '{"instances": [[1.0, 2]]}'  # two values for five features
    with open(capture_file, "a") as handle:
        handle.write("not json at all\n" + json.dumps(good) + "\n")
    report = run_drift(tmp_path / "captures", baseline_path, tmp_path / "out")
    assert report["rows"] == 100
    assert report["capture"]["malformed"] == 2
    assert "not a capture record" in report["capture"]["problems"][0]
    assert "5 features" in report["capture"]["problems"][1]
    assert report["predictions"] == 105  # the bad input's output still counts


def test_memory_is_bounded_by_the_batch_not_by_the_capture(baseline_path, tmp_path, monkeypatch):
    table = synthetic.generate(8000, task=TASK, seed=7)
    small, large = tmp_path / "small", tmp_path / "large"
    write_captures(small, recent(table.slice(0, 1000), rows_per_request=1))
    write_captures(large, recent(table, rows_per_request=1))
    seen: list[int] = []
    update = drift_job.DriftAccumulator.update_rows
    monkeypatch.setattr(drift_job.DriftAccumulator, "update_rows",
                        lambda self, rows: (seen.append(len(rows)), update(self, rows))[1])

    def peak(root: Path) -> int:
        tracemalloc.start()
        try:
            run_drift(root, baseline_path, tmp_path / f"out-{root.name}", "--batch-records", "500", "--no-html")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_small, peak_large = peak(small), peak(large)
    assert max(seen) == 500 and sum(seen) == 9000
    # 8x the rows, about the same peak: nothing grows with the capture.
    assert peak_large < 1.3 * peak_small, (peak_small, peak_large)


def test_requests_of_many_rows_are_handed_on_in_bounded_chunks(baseline_path, undrifted_captures, tmp_path,
                                                               monkeypatch):
    seen: list[int] = []
    update = drift_job.DriftAccumulator.update_rows
    monkeypatch.setattr(drift_job, "FLUSH_ROWS", 100)
    monkeypatch.setattr(drift_job.DriftAccumulator, "update_rows",
                        lambda self, rows: (seen.append(len(rows)), update(self, rows))[1])
    report = run_drift(undrifted_captures, baseline_path, tmp_path, "--no-html")
    assert report["rows"] == sum(seen) == 3000
    assert max(seen) < 100 + 5  # five rows a request: at most one request past the bound


def test_html_report_escapes_captured_text_and_a_missing_value_fails_loudly(baseline_path, undrifted_table, tmp_path):
    rows = rows_of(undrifted_table.slice(0, 50))
    for row in rows[:10]:
        row[2] = "<script>alert(1)</script>"
    table_requests = recent(undrifted_table.slice(0, 50))
    for k, request in enumerate(table_requests):
        request.rows = rows[k * 5:(k + 1) * 5]
    write_captures(tmp_path / "captures", table_requests)
    report = run_drift(tmp_path / "captures", baseline_path, tmp_path / "out")
    html = (tmp_path / "out" / "drift_report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    del report["thresholds"]
    with pytest.raises(jinja2.UndefinedError):
        render_drift(report)


def test_an_empty_window_gives_a_report_and_no_metrics(baseline_path, tmp_path):
    (tmp_path / "captures" / "fraud").mkdir(parents=True)
    report = run_drift(tmp_path / "captures", baseline_path, tmp_path / "out", "--publish", "file",
                       "--metrics-dir", str(tmp_path / "metrics"))
    assert report["rows"] == 0 and report["max_feature_psi"] is None
    assert report["features"]["amount"]["psi"] is None
    assert (tmp_path / "metrics" / "cloudwatch_metrics.jsonl").read_text() == ""
